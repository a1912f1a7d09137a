# syntax=docker/dockerfile:1
# a comment after the directives
ARG BASE=busybox
ARG TAG

FROM ${BASE}:${TAG:-latest} AS Build
ENV A=1 B="two words" C='single $quoted'
ENV LEGACY the rest of the line
LABEL org.example.x="y z" plain=1
RUN echo hello \
    # a comment inside a continuation
    && echo world

RUN ["/bin/sh", "-c", "echo exec form"]
WORKDIR /app
USER 1000:1000
EXPOSE 80/tcp 53/udp
VOLUME ["/data", "/logs"]
VOLUME /one /two
STOPSIGNAL SIGINT
SHELL ["/bin/sh", "-ec"]
HEALTHCHECK --interval=5s --retries=3 CMD wget -q localhost || exit 1
ONBUILD RUN echo triggered
CMD ["sh"]
ENTRYPOINT exec /bin/app

from build as final
copy --from=build --chown=1:2 --chmod=0755 /app/bin /usr/local/bin/
add --link ./archive.tar /srv/
COPY ["with space", "dest dir/"]
MAINTAINER someone <a@b.c>
HEALTHCHECK NONE
