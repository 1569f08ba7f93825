#!/bin/sh
# MAI container entrypoint.
#   serve (default): upgrade the schema (`mai migrate`, a no-op when it is current), then run
#                    `mai serve` on 0.0.0.0:$MAI_PORT with $MAI_WORKERS worker processes.
#   anything else:   run it as the `mai` command (e.g. `migrate`, `create-admin EMAIL`), or as a
#                    program when it is not a mai subcommand (e.g. `sh`).
set -eu

if [ "$#" -eq 0 ] || [ "$1" = "serve" ]; then
  [ "$#" -gt 0 ] && shift
  mai migrate
  exec mai serve --host 0.0.0.0 --port "${MAI_PORT:-8000}" --workers "${MAI_WORKERS:-1}" "$@"
fi

case "$1" in
  migrate|create-admin|--help)
    exec mai "$@"
    ;;
esac
exec "$@"
