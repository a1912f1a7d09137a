FROM busybox
RUN <<EOF
echo one
echo two
EOF
RUN <<-"EOT" cat > /x
	indented $NOT_EXPANDED
	EOT
COPY <<A <<B /dest/
content a
A
content b
B
RUN python3 - <<'SCRIPT' && echo done
print("hi")
SCRIPT
RUN echo "<<NOTAHEREDOC"
