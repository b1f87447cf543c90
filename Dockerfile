# The reelrank server's image: `make image` builds reelrank:latest, the
# image `reelrank plan --emit k8s` manifests run. The binary is static
# (CGO_ENABLED=0: the kernels are Go assembly, not cgo), so the runtime
# stage is distroless: no shell, no package manager, user nonroot.
#
#   docker run --rm -p 7070:7070 -p 9090:9090 -e REELRANK_TOKEN=secret reelrank:latest
#
# serves the embedded default world, built on first start into
# /var/lib/reelrank/cache (mount a volume at /var/lib/reelrank to keep it);
# --bundle /var/lib/reelrank/model serves a model folder put there.

FROM --platform=$BUILDPLATFORM golang:1.26-bookworm AS build
# Set by BuildKit (docker buildx build --platform linux/arm64 cross-compiles).
ARG TARGETOS TARGETARCH
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
	go build -trimpath -ldflags "-s -w" -o /out/usr/local/bin/reelrank ./cmd/reelrank \
	&& mkdir -p /out/var/lib/reelrank/cache

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/usr/local/bin/reelrank /usr/local/bin/reelrank
COPY --from=build --chown=65532:65532 /out/var/lib/reelrank /var/lib/reelrank
ENV HOME=/home/nonroot \
	REELRANK_CACHE=/var/lib/reelrank/cache
USER 65532:65532
WORKDIR /var/lib/reelrank
VOLUME ["/var/lib/reelrank"]
# 7070: the wire protocol; 9090: /metrics, /healthz, /readyz.
EXPOSE 7070 9090
ENTRYPOINT ["/usr/local/bin/reelrank"]
CMD ["serve", "--addr", "0.0.0.0:7070", "--metrics", "0.0.0.0:9090", "--sample=false"]
