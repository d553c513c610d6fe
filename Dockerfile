# augment-connector image: a static Go binary on distroless (no shell, no package manager),
# running as the nonroot user 65532.
#
#   docker build --build-arg VERSION=1.2.3 --build-arg COMMIT=$(git rev-parse HEAD) \
#     --build-arg DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ) -t augment-connector:1.2.3 .
#
# scripts/check-dockerfile.sh lints this file and builds the binary exactly as below.

FROM golang:1.26 AS build
WORKDIR /src
# Modules first: this layer is reused until go.mod or go.sum changes.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=""
ARG DATE=""
# CGO off: a static binary, which distroless/static needs (it has no libc).
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT} -X main.date=${DATE}" \
      -o /out/augment-connector ./cmd/augment-connector

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
ARG COMMIT=""
ARG DATE=""
LABEL org.opencontainers.image.title="augment-connector" \
      org.opencontainers.image.description="Kafka CDC topics to 8x8 Contact Center Data Augmentation API" \
      org.opencontainers.image.source="https://github.com/augment-connector/augment-connector" \
      org.opencontainers.image.url="https://github.com/augment-connector/augment-connector" \
      org.opencontainers.image.documentation="https://github.com/augment-connector/augment-connector#readme" \
      org.opencontainers.image.vendor="augment-connector" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}" \
      org.opencontainers.image.created="${DATE}" \
      org.opencontainers.image.base.name="gcr.io/distroless/static-debian12:nonroot"
COPY --from=build /out/augment-connector /augment-connector
USER 65532:65532
# /metrics, /healthz and /readyz (metrics.listen, default :9090).
EXPOSE 9090
ENTRYPOINT ["/augment-connector"]
CMD ["run", "--config=/etc/augment-connector/config.yaml"]
