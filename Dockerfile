# The kop gateway. Used by docker-compose.yml; build alone with `docker build -t kop .`
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# Only what the package build needs (pyproject.toml names README.md as the readme).
COPY pyproject.toml README.md ./
COPY kop ./kop
RUN pip install . && rm -rf /src

RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin kop
USER kop
WORKDIR /tmp

EXPOSE 9092 9404
ENTRYPOINT ["kop"]
CMD ["serve", "--listen", "0.0.0.0:9092"]
