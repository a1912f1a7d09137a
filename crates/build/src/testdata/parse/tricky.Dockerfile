# syntax=docker/dockerfile:1
# check=skip=all

  # indented comment before the first instruction
from   busybox:1.36   as   Builder
# JSON with escapes and a shell form that only looks like JSON
CMD ["echo", "a \"quoted\" word", "tab\tchar"]
ENTRYPOINT [ "sh", "-c" ]
RUN ["not", "closed"
# continuation with trailing spaces after the backslash, and an empty line in between
RUN echo one \   
\

    two
ENV PATH=/opt/bin:$PATH \
    MULTI="a b" \
    SINGLE='c d'
LABEL "quoted.key"="v" other=unquoted\ space
ARG A B=2 C="three"
EXPOSE 80 443/tcp ${PORT:-8080}
USER ${UID:-1000}:${GID:-1000}
HEALTHCHECK --interval=30s --timeout=3s --start-period=5s --start-interval=1s --retries=3 CMD ["curl", "-f", "http://localhost/"]
ONBUILD ADD . /app/src
STOPSIGNAL 9
SHELL ["powershell", "-command"]
COPY --chown=app:app --chmod=644 --link --from=0 a* b? [cd]e /dst/
ADD --keep-git-dir https://example.invalid/repo.git /src
