# syntax=docker/dockerfile:1

# Build stage: both binaries, static (no cgo), so they run on distroless/static.
FROM golang:1.26 AS build
WORKDIR /src

# Dependencies first, so source edits do not invalidate the module cache layer.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download

COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ ./cmd/evidenced ./cmd/evidence

# The data directory is created here because the runtime image has no shell;
# it is copied with the nonroot owner so a fresh named volume inherits it.
RUN mkdir -p /out/data

# Runtime stage: no shell, no package manager, runs as uid 65532 (nonroot).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/evidenced /out/evidence /usr/local/bin/
COPY --from=build --chown=65532:65532 /out/data /var/lib/evidence
ENV EVIDENCE_DATA_DIR=/var/lib/evidence
VOLUME /var/lib/evidence
EXPOSE 8080
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/evidenced"]
