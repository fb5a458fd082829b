"""The frozen host CLI's script: PyInstaller starts here (`python -m deploy` is relative)."""

from deploy.cli import main

main()
