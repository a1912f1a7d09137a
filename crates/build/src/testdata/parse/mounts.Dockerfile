FROM busybox AS base
RUN --mount=type=cache,target=/root/.cache --mount=type=bind,source=.,target=/src --network=none make
RUN --mount=type=tmpfs,target=/tmp \
    --security=insecure true
COPY --parents --exclude=*.md --exclude=tmp/ a/b /c/
ADD --checksum=sha256:0123 --keep-git-dir=true https://example.invalid/x /x
