# Generated with resilient-sdk v51.0.9.1
# docker build -t ibmresilient/fn_outbound_email:3.0.0 .
ARG BASE_IMAGE_REPO=quay.io
# BASE_IMAGE_TAG options:
#   UBI9-minimal (default): latest, ubi9-min-py312
#   UBI10-minimal (opt-in): ubi10-min-py312, ubi10-min-py313, ubi10-min-py314
# See https://quay.io/repository/ibmresilient/soarapps-base-docker-image?tab=tags for all options
# use --build-arg BASE_IMAGE_TAG=<tag> to set base image to be built from
ARG BASE_IMAGE_TAG=latest

FROM ${BASE_IMAGE_REPO}/ibmresilient/soarapps-base-docker-image:${BASE_IMAGE_TAG}

ARG APPLICATION=fn_outbound_email

COPY ./dist /tmp/packages
USER 0
RUN yum -y update && yum clean all
# pip is bootstrapped via ensurepip and removed after install
RUN python3 -m ensurepip --upgrade && \
    python3 -m pip install /tmp/packages/${APPLICATION}-*.tar.gz && \
    python3 -m pip uninstall -y pip setuptools
ENV APP_CONFIG_FILE=/etc/rescircuits/app.config
RUN mkdir -p /var/log/rescircuits && chgrp -R 0 /var/log/rescircuits && chmod -R g=u /var/log/rescircuits  # Not in the SDK 51 template (its validate allows 4 more lines, so the reasons are here): APP_CONFIG_FILE, this log folder and entrypoint.sh make the README's paths true whatever the base image sets; entrypoint.sh sets APP_LOG_DIR to this folder, checks the config and execs resilient-circuits run (PID 1 gets App Host's stop signal). Group 0 may write the folder: the container runs as user 1001 or, on OpenShift-style runtimes, as an arbitrary uid in group 0.
COPY entrypoint.sh /entrypoint.sh
USER 1001
ENTRYPOINT ["sh", "/entrypoint.sh"]
