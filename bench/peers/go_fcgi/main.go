// go_fcgi ADDR: "Hello, world!" with Go's net/http/fcgi (standard library
// only), a peer for bench/run. ADDR is HOST:PORT or unix:PATH (mode 0666).
//
//	go build -o go_fcgi main.go
package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/fcgi"
	"os"
	"strings"
)

func hello(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Content-Length", "14")
	w.Write([]byte("Hello, world!\n"))
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: go_fcgi HOST:PORT|unix:PATH")
		os.Exit(2)
	}
	addr := os.Args[1]
	var l net.Listener
	var err error
	if strings.HasPrefix(addr, "unix:") {
		path := strings.TrimPrefix(addr, "unix:")
		os.Remove(path)
		l, err = net.Listen("unix", path)
		if err == nil {
			err = os.Chmod(path, 0o666)
		}
	} else {
		l, err = net.Listen("tcp", addr)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "go_fcgi:", err)
		os.Exit(1)
	}
	fmt.Fprintln(os.Stderr, "go_fcgi: FastCGI on", addr)
	if err := fcgi.Serve(l, http.HandlerFunc(hello)); err != nil {
		fmt.Fprintln(os.Stderr, "go_fcgi:", err)
		os.Exit(1)
	}
}
