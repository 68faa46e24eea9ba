"""PyInstaller runtime hook: make a frozen Windows app load *our* onnxruntime DLLs.

Why: Windows 10/11 ship their own, older ``onnxruntime.dll`` in System32 (Windows ML). When a
frozen app imports ``onnxruntime``, its ``onnxruntime_pybind11_state.pyd`` can bind to that copy
and fail with "DLL load failed" or an API-version error. This hook runs before any app code:
it registers the bundled ``onnxruntime/capi`` folder with ``os.add_dll_directory`` and preloads
``onnxruntime.dll`` and ``onnxruntime_providers_shared.dll`` by full path, so the loader reuses
those modules instead of searching. On other platforms it does nothing.
"""

from __future__ import annotations

import os
import sys


def _register_onnxruntime_dlls() -> None:
    if sys.platform != "win32":
        return
    root = getattr(sys, "_MEIPASS", None) or os.path.dirname(sys.executable)
    capi = os.path.join(root, "onnxruntime", "capi")
    folders = [d for d in (capi, root) if os.path.isdir(d)]
    for folder in folders:
        try:
            os.add_dll_directory(folder)
        except OSError:
            pass
    import ctypes

    for name in ("onnxruntime_providers_shared.dll", "onnxruntime.dll"):
        for folder in folders:
            path = os.path.join(folder, name)
            if os.path.isfile(path):
                try:
                    ctypes.WinDLL(path)
                except OSError:
                    pass  # the import of onnxruntime will report the real error
                break


_register_onnxruntime_dlls()
