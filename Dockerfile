# The kop gateway. Used by docker-compose.yml; build alone with `docker build -t kop .`
# A build stage with a C compiler for the compiled record-batch codec (kop/_batch_codec.c), then a
# slim image with the wheel.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Only what the package build needs (pyproject.toml names README.md as the readme).
COPY pyproject.toml setup.py README.md ./
COPY kop ./kop
RUN pip wheel --no-deps -w /wheels .

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

COPY --from=build /wheels /wheels
RUN pip install /wheels/*.whl && rm -rf /wheels

RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin kop
USER kop
WORKDIR /tmp

EXPOSE 9092 9404
ENTRYPOINT ["kop"]
CMD ["serve", "--listen", "0.0.0.0:9092"]
