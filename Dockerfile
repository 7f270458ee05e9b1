# syntax=docker/dockerfile:1
# Build: cgo is required (SQLite with FTS5).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=1 go build -tags sqlite_fts5 -trimpath -ldflags "-s -w" -o /out/console ./cmd/console

# Runtime: a small Debian with the C library the binary links against; non-root.
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
	&& rm -rf /var/lib/apt/lists/* \
	&& useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin console \
	&& mkdir -p /data && chown console:console /data
COPY --from=build /out/console /usr/local/bin/console
ENV CONSOLE_ADDR=:8080 CONSOLE_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8080
USER console
HEALTHCHECK --interval=30s --timeout=3s CMD ["/usr/local/bin/console", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/console"]
CMD ["serve"]
