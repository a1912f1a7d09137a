FROM busybox
RUN echo crlf \
  next

CMD x
