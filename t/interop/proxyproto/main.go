// A UDP backend for t/dtls_proxy_protocol.t that parses the PROXY protocol
// version 2 header of every datagram with github.com/pires/go-proxyproto
// (Debian's golang-github-pires-go-proxyproto-dev) and its tlvparse
// package, and answers each datagram with a line saying what it parsed.
//
//	pp_backend_go --listen 127.0.0.1:PORT
//
// The line (t/interop/proxyproto-node/backend.js writes the same one from
// its own parse), fields absent when the header has no such thing:
//
//	pp parser=go hlen=N cmd=PROXY proto=UDP4|UDP6 src=IP sport=N dst=IP
//	    dport=N tlvs=0x02,0x20,... authority=S ssl.client=N ssl.verify=N
//	    ssl.tlvs=0x21,... ssl.version=S ssl.cipher=S ssl.cn=S psk=S len=N
//	    data=S
//
// hlen is the header's size, len the payload's, data its first 32 bytes;
// psk is the value of TLV 0xE4.  Values are escaped: a byte outside
// 0x21-0x7e, and "%", as %XX.  A datagram that does not parse gets
// "pp parser=go error=MESSAGE len=N".  Every line is also printed on
// stdout; on SIGTERM, "summary datagrams=N parsed=N failed=N".
//
// Built by scripts/interop-deps.sh into build/tools/pp_backend_go, in
// GOPATH mode, offline.

package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	proxyproto "github.com/pires/go-proxyproto"
	"github.com/pires/go-proxyproto/tlvparse"
)

const pskIdentity = proxyproto.PP2Type(0xE4)

type counts struct {
	mu                       sync.Mutex
	datagrams, parsed, fails int
}

func escape(b []byte) string {
	var sb strings.Builder

	for _, c := range b {
		if c < 0x21 || c > 0x7e || c == '%' {
			fmt.Fprintf(&sb, "%%%02X", c)
		} else {
			sb.WriteByte(c)
		}
	}

	return sb.String()
}

func types(tlvs []proxyproto.TLV) string {
	var t []string

	for _, tlv := range tlvs {
		t = append(t, fmt.Sprintf("0x%02x", byte(tlv.Type)))
	}

	return strings.Join(t, ",")
}

func describe(d []byte) (string, error) {
	r := bufio.NewReaderSize(bytes.NewReader(d), 65536)

	h, err := proxyproto.Read(r)
	if err != nil {
		return "", err
	}

	payload, err := io.ReadAll(r)
	if err != nil {
		return "", err
	}

	f := []string{"pp parser=go", fmt.Sprintf("hlen=%d", len(d)-len(payload))}

	switch {
	case h.Version != 2:
		return "", fmt.Errorf("version %d", h.Version)
	case h.Command.IsProxy():
		f = append(f, "cmd=PROXY")
	case h.Command.IsLocal():
		f = append(f, "cmd=LOCAL")
	}

	switch h.TransportProtocol {
	case proxyproto.UDPv4:
		f = append(f, "proto=UDP4")
	case proxyproto.UDPv6:
		f = append(f, "proto=UDP6")
	default:
		f = append(f, fmt.Sprintf("proto=0x%02x", byte(h.TransportProtocol)))
	}

	if src, dst, ok := h.UDPAddrs(); ok {
		f = append(f, fmt.Sprintf("src=%s sport=%d dst=%s dport=%d",
			src.IP, src.Port, dst.IP, dst.Port))
	}

	tlvs, err := h.TLVs()
	if err != nil {
		return "", err
	}

	f = append(f, "tlvs="+types(tlvs))

	for _, tlv := range tlvs {
		switch tlv.Type {
		case proxyproto.PP2_TYPE_AUTHORITY:
			f = append(f, "authority="+escape(tlv.Value))

		case proxyproto.PP2_TYPE_SSL:
			ssl, err := tlvparse.SSL(tlv)
			if err != nil {
				return "", fmt.Errorf("SSL TLV: %v", err)
			}

			f = append(f, fmt.Sprintf("ssl.client=%d ssl.verify=%d",
				ssl.Client, ssl.Verify), "ssl.tlvs="+types(ssl.TLV))

			if v, ok := ssl.SSLVersion(); ok {
				f = append(f, "ssl.version="+escape([]byte(v)))
			}

			for _, sub := range ssl.TLV {
				if sub.Type == proxyproto.PP2_SUBTYPE_SSL_CIPHER {
					f = append(f, "ssl.cipher="+escape(sub.Value))
				}
			}

			if cn, ok := ssl.ClientCN(); ok {
				f = append(f, "ssl.cn="+escape([]byte(cn)))
			}

		case pskIdentity:
			f = append(f, "psk="+escape(tlv.Value))
		}
	}

	data := payload
	if len(data) > 32 {
		data = data[:32]
	}

	f = append(f, fmt.Sprintf("len=%d", len(payload)), "data="+escape(data))

	return strings.Join(f, " "), nil
}

func main() {
	listen := flag.String("listen", "", "address:port to listen on (UDP)")
	flag.Parse()

	addr, err := net.ResolveUDPAddr("udp", *listen)
	if err != nil || *listen == "" {
		fmt.Println("error: --listen ADDRESS:PORT")
		os.Exit(2)
	}

	conn, err := net.ListenUDP("udp", addr)
	if err != nil {
		fmt.Printf("error: %v\n", err)
		os.Exit(1)
	}

	var n counts

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)

	go func() {
		<-sig
		n.mu.Lock()
		fmt.Printf("summary datagrams=%d parsed=%d failed=%d\n",
			n.datagrams, n.parsed, n.fails)
		os.Exit(0)
	}()

	fmt.Println("pp_backend ready")

	buf := make([]byte, 65536)

	for {
		size, peer, err := conn.ReadFromUDP(buf)
		if err != nil {
			fmt.Printf("error: %v\n", err)
			os.Exit(1)
		}

		line, err := describe(buf[:size])

		n.mu.Lock()
		n.datagrams++

		if err != nil {
			n.fails++
			line = fmt.Sprintf("pp parser=go error=%s len=%d",
				escape([]byte(err.Error())), size)
		} else {
			n.parsed++
		}

		fmt.Println(line)
		n.mu.Unlock()

		if _, err := conn.WriteToUDP([]byte(line), peer); err != nil {
			fmt.Printf("error: %v\n", err)
		}
	}
}
