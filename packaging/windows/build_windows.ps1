# Build the Windows installer of forensic_app in one command (PowerShell, from the repo root):
#
#   powershell -ExecutionPolicy Bypass -File packaging\windows\build_windows.ps1
#
# Steps (each one is also written out in packaging\windows\BUILD.md):
#   1. .venv with the app and PyInstaller (pip install -e .[package]); models fetched
#   2. PyInstaller onedir bundle -> dist\forensic-app\ (shared spec packaging\forensic_app.spec)
#   3. smoke test of the bundle: --version and analyze on a photo (the console twin prints)
#   4. Inno Setup -> dist\forensic-app-<version>-windows-x64-setup.exe
param(
    [string]$Python = "py -3.11",
    [string]$Iscc = "${env:ProgramFiles(x86)}\Inno Setup 6\ISCC.exe",
    [string]$SmokePhoto = ""
)
$ErrorActionPreference = "Stop"
Set-Location (Join-Path $PSScriptRoot "..\..")

function Invoke-Checked([string]$What, [scriptblock]$Block) {
    Write-Host "== $What"
    & $Block
    if ($LASTEXITCODE -ne 0) { throw "$What failed with exit code $LASTEXITCODE" }
}

if (-not (Test-Path ".venv\Scripts\python.exe")) {
    Invoke-Checked "create .venv" { Invoke-Expression "$Python -m venv .venv" }
}
$py = ".venv\Scripts\python.exe"
Invoke-Checked "install the app and PyInstaller" { & $py -m pip install -q -e ".[package]" }
Invoke-Checked "fetch CenterFace" { & $py -m forensic_app.fetch_models }
if (-not (Test-Path "models\gender_effnet_b0.onnx")) {
    throw "models\gender_effnet_b0.onnx is missing: put the trained gender model in models\ first"
}

Invoke-Checked "PyInstaller (onedir)" {
    & $py -m PyInstaller --noconfirm --clean --distpath dist --workpath build\pyinstaller `
        packaging\forensic_app.spec
}

$cli = "dist\forensic-app\forensic-app-cli.exe"
Invoke-Checked "smoke test: --version" { & $cli --version }
if ($SmokePhoto -ne "") {
    Invoke-Checked "smoke test: analyze $SmokePhoto" { & $cli analyze --json - $SmokePhoto }
}

if (-not (Test-Path $Iscc)) { throw "Inno Setup 6 not found at $Iscc (install it or pass -Iscc)" }
Invoke-Checked "Inno Setup" { & $Iscc packaging\windows\forensic_app.iss }
Get-ChildItem dist\*-setup.exe | Format-Table Name, Length
