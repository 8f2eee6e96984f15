# The reactor image: one image for the webhook API, the worker and `reactor setup`.
#
#   docker build -t likemagic-reactor:local .
#   docker run ... likemagic-reactor:local                   # the API on :8000 (the default command)
#   docker run ... likemagic-reactor:local reactor worker    # the worker
#   docker run ... likemagic-reactor:local reactor setup     # prepare the Temporal namespace
#
# docker-compose.yml runs all three; docs/deploy.md explains the stack.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# The processes run as this user, never as root.
RUN groupadd --system --gid 10001 reactor \
    && useradd --system --uid 10001 --gid reactor --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin reactor

WORKDIR /app

# The production dependencies, read from pyproject.toml, in a layer of their own, so a
# change to the code does not reinstall them. No dev extra: no test tools, no Temporal CLI.
COPY pyproject.toml ./
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; print('\n'.join(deps))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The application: the packages and modules pyproject.toml names (the email templates
# are package data of `activities`), and the README it declares as its readme.
COPY README.md worker.py ./
COPY cli ./cli
COPY api ./api
COPY core ./core
COPY storage ./storage
COPY workflows ./workflows
COPY activities ./activities
# Sample events and the sample housekeeping roster (HOUSEKEEPING_ROSTER's default path,
# relative to this working directory); mount your own roster over it in production.
COPY examples ./examples
RUN pip install . \
    && rm -rf build ./*.egg-info \
    && mkdir -p var/outbox \
    && chown -R reactor:reactor var

USER reactor

# EMAIL_OUTBOX_DIR defaults to var/outbox, i.e. /app/var/outbox (a volume in compose).
EXPOSE 8000

# The `reactor` console script of pyproject.toml. The worker runs `reactor worker`.
CMD ["reactor", "api", "--host", "0.0.0.0", "--port", "8000"]
