# Switchboard: one image for the app and the one-shot `switchboard migrate`.
# The runtime stage installs the built wheels (which carries the migrations) and the
# locked dependencies; no project source is in the image.

# Build: the locked requirements, then the wheel.
FROM python:3.12-slim AS build
ENV UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never
# The same uv as .ci/run.
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /src
COPY pyproject.toml uv.lock README.md ./
COPY clients/python ./clients/python
RUN mkdir /dist \
    && uv export --locked --no-dev --no-emit-workspace --format requirements-txt \
        --output-file /dist/requirements.txt
COPY migrations ./migrations
COPY src ./src
# The JavaScript client: the wheel carries it as /static/switchboard.js (force-include).
COPY clients/js/src ./clients/js/src
# Two wheels: the server (switchboard-live) and the client it uses (switchboard-live-client).
RUN uv build --wheel --all-packages --out-dir /dist

# Runtime: a virtualenv with the dependencies (a layer that survives code changes: it
# is rebuilt only when requirements.txt changes), then the wheel without its dependencies.
FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/app/.venv/bin:$PATH
# An unprivileged user to run as, and the virtualenv.
RUN useradd --create-home --uid 10001 switchboard \
    && python -m venv /app/.venv
COPY --from=build /dist/requirements.txt /tmp/requirements.txt
RUN pip install --no-cache-dir --require-hashes -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt
COPY --from=build /dist/*.whl /tmp/
RUN pip install --no-cache-dir --no-deps /tmp/switchboard_live*.whl \
    && rm /tmp/switchboard_live*.whl

WORKDIR /app
USER switchboard
EXPOSE 8000
# The process answers on the port CMD binds (compose checks /readyz, which needs the
# database and Redis too). The slim image has no curl: Python's urllib fails on
# anything but a 2xx/3xx answer.
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["switchboard", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
