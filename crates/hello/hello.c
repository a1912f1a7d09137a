/* The embedded hello-world image's program: static, no libc, two syscalls. */
static const char msg[] =
"\n"
"Hello from berth!\n"
"This message shows that your installation appears to be working correctly.\n"
"\n"
"To generate this message, berth took the following steps:\n"
" 1. The berth client contacted the berth daemon.\n"
" 2. The daemon found the \"hello-world\" image, built into berth itself (no download needed).\n"
" 3. The daemon created a new container from that image which runs the\n"
"    executable that produces the output you are currently reading.\n"
" 4. The daemon streamed that output to the berth client, which sent it\n"
"    to your terminal.\n"
"\n"
"To try something more ambitious, you can run a shell in a container with:\n"
" $ berth run -it busybox sh\n"
"\n"
"berth speaks the Docker Engine API: point the docker CLI at it with\n"
" $ export DOCKER_HOST=unix:///run/berth/berth.sock\n"
"\n";

static long sys3(long n, long a, long b, long c) {
    long ret;
#if defined(__x86_64__)
    __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
#elif defined(__aarch64__)
    register long x8 __asm__("x8") = n;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
    ret = x0;
#else
#error "unsupported architecture"
#endif
    return ret;
}

#if defined(__x86_64__)
#define SYS_write 1
#define SYS_exit 60
#else
#define SYS_write 64
#define SYS_exit 93
#endif

void _start(void) {
    long off = 0, len = sizeof(msg) - 1;
    while (off < len) {
        long n = sys3(SYS_write, 1, (long)(msg + off), len - off);
        if (n <= 0) sys3(SYS_exit, 1, 0, 0);
        off += n;
    }
    sys3(SYS_exit, 0, 0, 0);
    for (;;) {}
}
