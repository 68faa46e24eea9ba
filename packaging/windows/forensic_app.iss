; Inno Setup 6 script for forensic_app on Windows (x64). Build steps: packaging/windows/BUILD.md.
;
;   ISCC.exe packaging\windows\forensic_app.iss
;
; Input:  dist\forensic-app\  (the PyInstaller onedir bundle from packaging\forensic_app.spec:
;         forensic-app.exe, forensic-app-cli.exe and _internal\ with both models and the icons)
; Output: dist\forensic-app-<version>-windows-x64-setup.exe
;
; The version is read from forensic-app.exe's version resource, which the spec fills from the
; package version; pass /DAppVersion=1.2.3 to override.

#define AppName "Forensic Face Analyzer"
#define AppShortName "forensic-app"
#define AppExeName "forensic-app.exe"
#define AppCliExeName "forensic-app-cli.exe"
#define AppPublisher "forensic_app developers"
#define BundleDir "..\..\dist\forensic-app"
#ifndef AppVersion
  #define AppVersion GetVersionNumbersString(AddBackslash(SourcePath) + BundleDir + "\" + AppExeName)
#endif

[Setup]
; AppId identifies the product to Windows for upgrades and uninstall: never change it.
; (The doubled brace escapes "{" in Inno Setup.)
AppId={{4ADDDED7-4347-4620-B4D8-8B6D93BF6247}
AppName={#AppName}
AppVersion={#AppVersion}
AppVerName={#AppName} {#AppVersion}
AppPublisher={#AppPublisher}
VersionInfoVersion={#AppVersion}
VersionInfoProductName={#AppName}
DefaultDirName={autopf}\{#AppName}
DefaultGroupName={#AppName}
DisableProgramGroupPage=yes
; Per-machine by default; the dialog lets a user without admin rights install for themselves.
PrivilegesRequired=admin
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
MinVersion=10.0
OutputDir=..\..\dist
OutputBaseFilename={#AppShortName}-{#AppVersion}-windows-x64-setup
SetupIconFile=..\..\resources\icon.ico
UninstallDisplayIcon={app}\{#AppExeName}
UninstallDisplayName={#AppName}
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
; The app writes nothing into its own folder (logs and settings live in %LOCALAPPDATA%), so the
; uninstaller removes the folder completely.
CloseApplications=yes

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
; The whole onedir bundle; onnxruntime.dll and onnxruntime_providers_shared.dll are inside
; _internal\onnxruntime\capi\ and are registered at start-up by the bundle's runtime hook
; (packaging\hooks\rthook_onnxruntime_dlls.py), so the older copy Windows keeps in System32
; is never picked up.
Source: "{#BundleDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\{#AppName}"; Filename: "{app}\{#AppExeName}"; WorkingDir: "{userdocs}"; Comment: "Find faces in photos and estimate perceived gender"
Name: "{group}\{#AppName} command prompt"; Filename: "{cmd}"; Parameters: "/k cd /d ""{userdocs}"" && set ""PATH={app};%PATH%"" && {#AppCliExeName} --help"; WorkingDir: "{userdocs}"
Name: "{group}\Uninstall {#AppName}"; Filename: "{uninstallexe}"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\{#AppExeName}"; WorkingDir: "{userdocs}"; Tasks: desktopicon

[Run]
Filename: "{app}\{#AppExeName}"; Description: "{cm:LaunchProgram,{#StringChange(AppName, '&', '&&')}}"; Flags: nowait postinstall skipifsilent

[UninstallDelete]
; Python may leave compiled caches next to the bundle; remove the folder entirely.
Type: filesandordirs; Name: "{app}\_internal"
Type: dirifempty; Name: "{app}"
