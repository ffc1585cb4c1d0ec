/* notify-recv — stands in for systemd's notify socket in tests: binds the
 * abstract socket NAME (NOTIFY_SOCKET=@NAME for the daemon under test) and
 * prints every datagram, one per line with newlines as '|', for SECS
 * seconds.  Usage: notify-recv NAME SECS */
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 3 || strlen(argv[1]) > 100) {
        fprintf(stderr, "usage: notify-recv NAME SECS\n");
        return 2;
    }
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    memcpy(a.sun_path + 1, argv[1], strlen(argv[1]));
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(argv[1]));
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, len)) {
        perror("notify-recv: bind");
        return 1;
    }
    time_t end = time(NULL) + atoi(argv[2]);
    setvbuf(stdout, NULL, _IOLBF, 0);
    while (time(NULL) < end) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, 200) <= 0)
            continue;
        char buf[1024];
        ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
        if (n <= 0)
            continue;
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] == '\n')
                buf[i] = '|';
        buf[n] = '\0';
        printf("%s\n", buf);
    }
    return 0;
}
