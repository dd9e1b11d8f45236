/* The C baseline for CGI start-up cost: the least a CGI program can do. */
#include <stdio.h>

int main(void) {
    static const char response[] =
        "Status: 200 OK\r\n"
        "Content-Type: text/plain\r\n"
        "Content-Length: 14\r\n"
        "\r\n"
        "Hello, world!\n";
    fwrite(response, 1, sizeof response - 1, stdout);
    return 0;
}
