#!/bin/sh
# /usr/bin/forensic-app: start forensic_app installed under /opt/forensic-app.
# No subcommand opens the window; `forensic-app analyze ...` runs the command-line tool.
exec /opt/forensic-app/forensic-app "$@"
