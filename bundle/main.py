"""The frozen entrypoint's script: PyInstaller starts here (`python -m entrypoint` is relative)."""

from entrypoint.cli import main

main()
