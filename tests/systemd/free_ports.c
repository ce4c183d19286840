/* free_ports N: prints N distinct loopback TCP ports that nobody listens on
 * (each bound to port 0 and held until all are chosen), one per line. For
 * the shell tests of this folder. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char** argv) {
  int count = argc > 1 ? atoi(argv[1]) : 1;
  if (count < 1 || count > 64) {
    fprintf(stderr, "usage: free_ports N (1..64)\n");
    return 2;
  }
  int fds[64];
  for (int i = 0; i < count; ++i) {
    struct sockaddr_in addr = {0};
    socklen_t len = sizeof(addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fds[i] = socket(AF_INET, SOCK_STREAM, 0);
    if (fds[i] < 0 || bind(fds[i], (struct sockaddr*)&addr, sizeof(addr)) != 0 ||
        getsockname(fds[i], (struct sockaddr*)&addr, &len) != 0) {
      perror("free_ports");
      return 1;
    }
    printf("%d\n", ntohs(addr.sin_port));
  }
  for (int i = 0; i < count; ++i) close(fds[i]);
  return 0;
}
