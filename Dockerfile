# Switchboard: one image for the app and the one-shot `switchboard migrate`.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    PATH=/app/.venv/bin:$PATH

# The same uv as .ci/run, and an unprivileged user to run as.
RUN pip install --no-cache-dir uv==0.13.9 \
    && useradd --create-home --uid 10001 switchboard

WORKDIR /app
# Dependencies first (a layer that survives code changes), then the project itself.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --locked --no-dev --no-install-project
# The project is installed editable from /app/src: `switchboard migrate` finds
# alembic.ini and migrations/ beside src/, as in a checkout.
COPY alembic.ini ./
COPY migrations ./migrations
COPY src ./src
RUN uv sync --locked --no-dev

USER switchboard
EXPOSE 8000
CMD ["switchboard", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
