// A DTLS-PSK client made with pion/dtls (v2), for t/interop_pion.t:
// handshake, COUNT datagrams echoed back one by one and checked, close;
// with --resume N, N more sessions that offer the first one's session ID.
//
//	pion_client --host 127.0.0.1 --port P --identity ID --key HEX
//	    [--cipher TLS_PSK_WITH_AES_128_CCM_8[,...]] [--count N]
//	    [--size-max N] [--timeout MS] [--resume N]
//
// Prints one line per step: "handshake ok cipher=NAME session=HEX",
// "echo ok n=N", "closed", "resumed yes|no", or "error: ...";
// exits 0 when every step worked, 1 otherwise (2: bad arguments).
//
// Built by scripts/interop-deps.sh into build/tools/pion_client, in GOPATH
// mode with Debian's golang-github-pion-dtls.v2-dev, offline.

package main

import (
	"bytes"
	"context"
	"encoding/gob"
	"encoding/hex"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/pion/dtls/v2"
)

// the PSK suites pion has, in the order offered when --cipher is not
// given; --cipher names them as pion does (CipherSuiteID.String(): the
// IANA names)

var suites = []dtls.CipherSuiteID{
	dtls.TLS_PSK_WITH_AES_128_CCM_8,
	dtls.TLS_PSK_WITH_AES_128_CCM,
	dtls.TLS_PSK_WITH_AES_128_GCM_SHA256,
	dtls.TLS_PSK_WITH_AES_256_CCM_8,
	dtls.TLS_PSK_WITH_AES_128_CBC_SHA256,
	dtls.TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256,
}

// the fields of pion's serialized State this client reads (gob matches
// fields by name and skips the others)

type stateView struct {
	CipherSuiteID uint16
	SessionID     []byte
}

// a session store for one server: what resumption needs

type store struct {
	mu sync.Mutex
	s  map[string]dtls.Session
}

func (st *store) Set(key []byte, s dtls.Session) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.s[string(key)] = s
	return nil
}

func (st *store) Get(key []byte) (dtls.Session, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.s[string(key)], nil
}

func (st *store) Del(key []byte) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	delete(st.s, string(key))
	return nil
}

func suite(name string) (dtls.CipherSuiteID, bool) {
	for _, id := range suites {
		if id.String() == name {
			return id, true
		}
	}

	return 0, false
}

func out(format string, args ...interface{}) {
	fmt.Printf(format+"\n", args...)
}

func fail(format string, args ...interface{}) {
	out("error: "+format, args...)
	os.Exit(1)
}

func main() {
	host := flag.String("host", "127.0.0.1", "server address")
	port := flag.Int("port", 0, "server port")
	identity := flag.String("identity", "", "PSK identity")
	keyHex := flag.String("key", "", "PSK, hex")
	cipher := flag.String("cipher", "", "cipher suites to offer, comma-separated (IANA names); all PSK ones by default")
	count := flag.Int("count", 1, "datagrams to send")
	sizeMax := flag.Int("size-max", 100, "largest datagram")
	timeoutMs := flag.Int("timeout", 5000, "timeout of each step, ms")
	resume := flag.Int("resume", 0, "more sessions resuming the first")
	flag.Parse()

	key, err := hex.DecodeString(*keyHex)
	if err != nil || len(key) == 0 || *port == 0 || *identity == "" {
		out("error: --port, --identity and --key HEX are required")
		os.Exit(2)
	}

	timeout := time.Duration(*timeoutMs) * time.Millisecond

	// everything below is bounded by this watchdog

	total := timeout * time.Duration((2+*count)*(1+*resume))
	time.AfterFunc(total, func() {
		out("error: timed out after %v", total)
		os.Exit(1)
	})

	// pion offers no PSK suite unless told to: by default all it has

	ids := suites
	if *cipher != "" {
		ids = nil
		for _, name := range strings.Split(*cipher, ",") {
			id, ok := suite(name)
			if !ok {
				out("error: unknown cipher %s", name)
				os.Exit(2)
			}
			ids = append(ids, id)
		}
	}

	raddr := &net.UDPAddr{IP: net.ParseIP(*host), Port: *port}
	if raddr.IP == nil {
		out("error: bad --host %s", *host)
		os.Exit(2)
	}

	cfg := &dtls.Config{
		PSK: func(hint []byte) ([]byte, error) {
			return key, nil
		},
		PSKIdentityHint:      []byte(*identity),
		CipherSuites:         ids,
		ExtendedMasterSecret: dtls.RequestExtendedMasterSecret,
		ConnectContextMaker: func() (context.Context, func()) {
			return context.WithTimeout(context.Background(), timeout)
		},
	}

	if *resume > 0 {
		cfg.SessionStore = &store{s: map[string]dtls.Session{}}
	}

	ok := true
	var first []byte

	for s := 0; s <= *resume; s++ {
		id, good := session(raddr, cfg, *count, *sizeMax, timeout)
		ok = ok && good

		if s == 0 {
			first = id
		} else if len(first) > 0 && bytes.Equal(id, first) {
			out("resumed yes")
		} else {
			out("resumed no")
			ok = false
		}
	}

	if !ok {
		os.Exit(1)
	}
}

// one session: handshake, echoes, close; returns its session ID

func session(raddr *net.UDPAddr, cfg *dtls.Config, count, sizeMax int,
	timeout time.Duration) ([]byte, bool) {

	conn, err := dtls.Dial("udp", raddr, cfg)
	if err != nil {
		fail("handshake: %v", err)
	}

	var view stateView
	state := conn.ConnectionState()
	if b, err := state.MarshalBinary(); err == nil {
		_ = gob.NewDecoder(bytes.NewReader(b)).Decode(&view)
	}

	out("handshake ok cipher=%s session=%x",
		dtls.CipherSuiteID(view.CipherSuiteID), view.SessionID)

	// datagrams of sizes from 1 to size-max, the last one size-max,
	// each with its number so that a reordered echo is caught

	n := 0
	buf := make([]byte, 65536)

	for i := 0; i < count; i++ {
		size := sizeMax
		if count > 1 {
			size = 1 + i*(sizeMax-1)/(count-1)
		}

		data := make([]byte, size)
		for j := range data {
			data[j] = byte(i*7 + j*13)
		}
		if size >= 4 {
			data[0], data[1], data[2], data[3] =
				byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
		}

		if _, err := conn.Write(data); err != nil {
			out("error: echo %d (%d bytes): write: %v", i+1, size, err)
			break
		}

		_ = conn.SetReadDeadline(time.Now().Add(timeout))

		got, err := conn.Read(buf)
		if err != nil {
			out("error: echo %d (%d bytes): %v", i+1, size, err)
			break
		}

		if !bytes.Equal(buf[:got], data) {
			out("error: echo %d (%d bytes) differs: got %d bytes",
				i+1, size, got)
			break
		}

		n++
	}

	if count > 0 {
		if n == count {
			out("echo ok n=%d", n)
		} else {
			out("echo failed n=%d", n)
		}
	}

	// Close() sends a close_notify alert, then closes the UDP socket

	if err := conn.Close(); err != nil {
		out("error: close: %v", err)
		return view.SessionID, false
	}

	out("closed")

	return view.SessionID, n == count
}
