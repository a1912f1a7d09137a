# escape=`
FROM busybox
RUN echo a `
    b
COPY c:\\path d\\
RUN echo trailing \\
