; Lanyard's Windows installer (64-bit), built on Linux with Debian's makensis by
; `cargo xtask bundle nsis` (and by the Windows lane of `cargo xtask test`).
;
; It installs for every user of the PC (a gaming center's seats are shared):
;   - lanyard-desktop.exe, WebView2Loader.dll and lanyard.exe in "Program Files\Lanyard";
;   - lanyard.exe's folder on the system PATH (skipped, with a message, when PATH is too
;     long for the installer to rewrite safely);
;   - the dev.lanyard: URL scheme, which sends sign-in redirects to the app;
;   - a Start-menu entry, and an Apps & features entry with a quiet uninstaller;
;   - with /AUTOSTART, the app at every user's sign-in (in the tray).
; Silent: `lanyard-setup.exe /S [/AUTOSTART]`; `uninstall.exe /S`.
;
; Defines given by xtask: VERSION, APP_EXE, CLI_EXE, LOADER_DLL, ICON, OUTFILE.

Unicode true
Target amd64-unicode
ManifestDPIAware true
SetCompressor /SOLID lzma
RequestExecutionLevel admin

!include "MUI2.nsh"
!include "FileFunc.nsh"
!include "WordFunc.nsh"
!include "LogicLib.nsh"
!include "x64.nsh"

!define /math NSIS_MAX_STRLEN_MINUS_ONE ${NSIS_MAX_STRLEN} - 1
!define NAME "Lanyard"
!define PUBLISHER "Lanyard"
!define SCHEME "dev.lanyard"
!define UNINSTALL_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\Lanyard"
!define RUN_KEY "Software\Microsoft\Windows\CurrentVersion\Run"
!define ENV_KEY "SYSTEM\CurrentControlSet\Control\Session Manager\Environment"

Name "${NAME}"
OutFile "${OUTFILE}"
InstallDir "$PROGRAMFILES64\Lanyard"
BrandingText "${NAME} ${VERSION}"
VIProductVersion "${VERSION}.0"
VIAddVersionKey "ProductName" "${NAME}"
VIAddVersionKey "FileVersion" "${VERSION}"
VIAddVersionKey "ProductVersion" "${VERSION}"
VIAddVersionKey "FileDescription" "${NAME} installer"
VIAddVersionKey "LegalCopyright" "MIT OR Apache-2.0"

!define MUI_ICON "${ICON}"
!define MUI_UNICON "${ICON}"
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES
!insertmacro MUI_LANGUAGE "English"

Function .onInit
  ${IfNot} ${RunningX64}
    MessageBox MB_OK|MB_ICONSTOP "Lanyard needs 64-bit Windows." /SD IDOK
    Abort
  ${EndIf}
  SetRegView 64
  SetShellVarContext all
FunctionEnd

Function un.onInit
  SetRegView 64
  SetShellVarContext all
FunctionEnd

Section "Lanyard"
  SetOutPath "$INSTDIR"
  File "/oname=lanyard-desktop.exe" "${APP_EXE}"
  File "/oname=lanyard.exe" "${CLI_EXE}"
  File "/oname=WebView2Loader.dll" "${LOADER_DLL}"
  WriteUninstaller "$INSTDIR\uninstall.exe"

  ; Sign-in redirects: dev.lanyard:/callback opens the app with the URL.
  WriteRegStr HKLM "Software\Classes\${SCHEME}" "" "URL:Lanyard sign-in"
  WriteRegStr HKLM "Software\Classes\${SCHEME}" "URL Protocol" ""
  WriteRegStr HKLM "Software\Classes\${SCHEME}\DefaultIcon" "" '"$INSTDIR\lanyard-desktop.exe",0'
  WriteRegStr HKLM "Software\Classes\${SCHEME}\shell\open\command" "" '"$INSTDIR\lanyard-desktop.exe" "%1"'

  CreateShortCut "$SMPROGRAMS\Lanyard.lnk" "$INSTDIR\lanyard-desktop.exe"

  ${GetParameters} $R0
  ClearErrors
  ${GetOptions} $R0 "/AUTOSTART" $R1
  ${IfNot} ${Errors}
    WriteRegStr HKLM "${RUN_KEY}" "Lanyard" '"$INSTDIR\lanyard-desktop.exe" --hidden'
  ${EndIf}

  ; lanyard.exe on PATH. A PATH longer than the installer's strings would be cut short
  ; when written back: then it is left alone, and the operator told.
  ReadRegStr $0 HKLM "${ENV_KEY}" "Path"
  StrLen $1 $0
  ${If} $1 >= ${NSIS_MAX_STRLEN_MINUS_ONE}
    DetailPrint "PATH is too long to change safely; add $INSTDIR to it yourself"
    MessageBox MB_OK|MB_ICONINFORMATION "The system PATH is too long for the installer to change safely. Add $INSTDIR to it to run lanyard from a terminal." /SD IDOK
  ${Else}
    ${WordAdd} "$0" ";" "+$INSTDIR" $2
    WriteRegExpandStr HKLM "${ENV_KEY}" "Path" "$2"
    SendMessage ${HWND_BROADCAST} ${WM_SETTINGCHANGE} 0 "STR:Environment" /TIMEOUT=500
  ${EndIf}

  ; Apps & features.
  WriteRegStr HKLM "${UNINSTALL_KEY}" "DisplayName" "${NAME}"
  WriteRegStr HKLM "${UNINSTALL_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKLM "${UNINSTALL_KEY}" "Publisher" "${PUBLISHER}"
  WriteRegStr HKLM "${UNINSTALL_KEY}" "DisplayIcon" '"$INSTDIR\lanyard-desktop.exe"'
  WriteRegStr HKLM "${UNINSTALL_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKLM "${UNINSTALL_KEY}" "UninstallString" '"$INSTDIR\uninstall.exe"'
  WriteRegStr HKLM "${UNINSTALL_KEY}" "QuietUninstallString" '"$INSTDIR\uninstall.exe" /S'
  WriteRegDWORD HKLM "${UNINSTALL_KEY}" "NoModify" 1
  WriteRegDWORD HKLM "${UNINSTALL_KEY}" "NoRepair" 1
  ${GetSize} "$INSTDIR" "/S=0K" $0 $1 $2
  WriteRegDWORD HKLM "${UNINSTALL_KEY}" "EstimatedSize" $0

  ; The app needs Microsoft Edge WebView2 (part of Windows 11, and of Windows 10 with
  ; current updates); the command line does not.
  ReadRegStr $0 HKLM "SOFTWARE\WOW6432Node\Microsoft\EdgeUpdate\Clients\{F3017226-FE2A-4295-8BDF-00C3A9A7E4C5}" "pv"
  ${If} $0 == ""
    DetailPrint "Microsoft Edge WebView2 Runtime not found: the app needs it, lanyard.exe does not"
  ${EndIf}
SectionEnd

Section "Uninstall"
  ; The app and any agent still running hold their files open.
  nsExec::Exec 'taskkill /F /IM lanyard-desktop.exe'
  nsExec::Exec 'taskkill /F /IM lanyard.exe'

  Delete "$INSTDIR\lanyard-desktop.exe"
  Delete "$INSTDIR\lanyard.exe"
  Delete "$INSTDIR\WebView2Loader.dll"
  Delete "$INSTDIR\uninstall.exe"
  RMDir "$INSTDIR"

  Delete "$SMPROGRAMS\Lanyard.lnk"
  DeleteRegKey HKLM "Software\Classes\${SCHEME}"
  DeleteRegValue HKLM "${RUN_KEY}" "Lanyard"
  DeleteRegKey HKLM "${UNINSTALL_KEY}"

  ReadRegStr $0 HKLM "${ENV_KEY}" "Path"
  StrLen $1 $0
  ${If} $1 < ${NSIS_MAX_STRLEN_MINUS_ONE}
    ${WordAdd} "$0" ";" "-$INSTDIR" $2
    WriteRegExpandStr HKLM "${ENV_KEY}" "Path" "$2"
    SendMessage ${HWND_BROADCAST} ${WM_SETTINGCHANGE} 0 "STR:Environment" /TIMEOUT=500
  ${EndIf}
SectionEnd
