#!/bin/sh
# Start-up of the fn_outbound_email container on App Host (the Dockerfile's ENTRYPOINT).
#
# App Host mounts the app's configuration at $APP_CONFIG_FILE (set in the Dockerfile to
# /etc/rescircuits/app.config); resilient-circuits writes its log to $APP_LOG_DIR, set here to
# /var/log/rescircuits. The Dockerfile makes that folder writable for group 0, because the
# container runs as user 1001 or, on OpenShift-style runtimes, as an arbitrary uid in group 0.
set -e

APP_CONFIG_FILE="${APP_CONFIG_FILE:-/etc/rescircuits/app.config}"
# resilient-circuits writes app.log here unless app.config's [resilient] logdir names another folder
APP_LOG_DIR="${APP_LOG_DIR:-/var/log/rescircuits}"
export APP_CONFIG_FILE APP_LOG_DIR

if [ ! -r "$APP_CONFIG_FILE" ]; then
    echo "fn_outbound_email: no readable app.config at $APP_CONFIG_FILE (set APP_CONFIG_FILE or mount the file)" >&2
    exit 1
fi

# exec: resilient-circuits becomes PID 1 and receives App Host's stop signal itself
exec resilient-circuits run "$@"
