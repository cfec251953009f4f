// A DTLS-PSK to UDP proxy made with pion/dtls (v2): the program a user
// would write instead of nginx with ngx_dtls, for the side-by-side
// benchmark.  Each accepted DTLS connection gets one UDP socket to the
// backend; every record received is sent to the backend as one datagram,
// every datagram from the backend goes back as one record.  A session
// ends on close_notify, on a fatal alert or error, or when no datagram has
// gone either way for --idle-timeout (like nginx's proxy_timeout); its
// upstream socket is closed then.  A datagram from the backend larger
// than a record can hold (16384 bytes) is dropped; one larger than the
// MTU is sent anyway (pion does not check; nginx drops it).  A session
// waiting for the backend holds no read buffer: one is taken from a pool
// when a datagram is there.
//
//	pion_proxy --listen 127.0.0.1:PORT --backend 127.0.0.1:PORT
//	    --psk-file FILE [--cipher LIST] [--bind ADDR[,ADDR...]]
//	    [--mtu 1200] [--idle-timeout 10m] [--handshake-timeout 10s]
//	    [--handshakes 1024] [--stats-every DURATION]
//
// --psk-file has the format of ngx_dtls's dtls_psk_file: "identity:hexkey"
// lines, the identity being everything before the last ':' (1 to 128
// printable ASCII bytes), the key 16 to 64 bytes in hex; blank lines and
// lines starting with '#' are ignored.  --cipher takes IANA names
// (TLS_PSK_WITH_AES_128_CCM_8) or OpenSSL ones (PSK-AES128-CCM8),
// comma- or colon-separated; default TLS_PSK_WITH_AES_128_CCM_8,
// TLS_PSK_WITH_AES_128_GCM_SHA256.  --bind lists the local addresses the
// upstream sockets bind to (port 0), in turn: each has its own range of
// ephemeral ports.
//
// The cookie exchange (HelloVerifyRequest) is on, as is pion's default
// for the extended master secret (requested).  pion's listener runs the
// handshake inside Accept: --handshakes goroutines accept, so that many
// handshakes run at once (nginx's dtls_handshake_limit, default 1024);
// beyond them pion's listener queues 128 new clients and drops the rest.
//
// Prints "listening on ADDR" on stdout once ready; errors go to stderr,
// rate-limited.  SIGUSR1 (or --stats-every) prints one line of counters
// to stderr.  Exits 0 on SIGTERM or SIGINT, 1 on a failure to start, 2 on
// bad arguments.
//
// Built by "scripts/interop-deps.sh pion_proxy" into build/tools/pion_proxy,
// in GOPATH mode with Debian's golang-github-pion-dtls.v2-dev, offline.

package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/pion/dtls/v2"
)

const (
	// largest plaintext of a record (RFC 6347, 4.1); a larger datagram
	// from the backend cannot be sent as one record and is dropped
	maxPlaintext = 16384

	// pion reads datagrams of 8192 bytes at most: no record it decrypts
	// is larger
	downBufSize = 8192
)

// the PSK suites pion has, by their OpenSSL names; their IANA names are
// pion's own (CipherSuiteID.String())

var suites = map[string]dtls.CipherSuiteID{
	"PSK-AES128-CCM":              dtls.TLS_PSK_WITH_AES_128_CCM,
	"PSK-AES128-CCM8":             dtls.TLS_PSK_WITH_AES_128_CCM_8,
	"PSK-AES256-CCM8":             dtls.TLS_PSK_WITH_AES_256_CCM_8,
	"PSK-AES128-GCM-SHA256":       dtls.TLS_PSK_WITH_AES_128_GCM_SHA256,
	"PSK-AES128-CBC-SHA256":       dtls.TLS_PSK_WITH_AES_128_CBC_SHA256,
	"ECDHE-PSK-AES128-CBC-SHA256": dtls.TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256,
}

// counters, for SIGUSR1 and --stats-every

var stats struct {
	handshakes  int64 // completed
	failed      int64 // handshakes that failed or timed out
	upstreamErr int64 // upstream sockets that could not be opened
	active      int64 // sessions relaying now
	closed      int64 // sessions ended
}

var (
	backend     *net.UDPAddr
	binds       []*net.UDPAddr
	bindNext    uint64
	idleTimeout time.Duration
	pskKeys     map[string][]byte
	dtlsConfig  *dtls.Config
)

// datagrams from the backends are read into buffers of this pool only
// when one is there to read: a session waiting holds no buffer

var upPool = sync.Pool{
	New: func() interface{} {
		b := make([]byte, maxPlaintext)
		return &b
	},
}

func usage(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "pion_proxy: "+format+"\n", args...)
	flag.Usage()
	os.Exit(2)
}

func main() {
	listen := flag.String("listen", "", "DTLS address to listen on, IP:PORT")
	backendStr := flag.String("backend", "", "UDP backend, IP:PORT")
	pskFile := flag.String("psk-file", "", "PSK file, \"identity:hexkey\" lines")
	cipher := flag.String("cipher",
		"TLS_PSK_WITH_AES_128_CCM_8,TLS_PSK_WITH_AES_128_GCM_SHA256",
		"cipher suites, comma-separated (IANA or OpenSSL names)")
	bind := flag.String("bind", "", "local addresses of the upstream sockets, comma-separated, used in turn")
	mtu := flag.Int("mtu", 1200, "largest handshake datagram")
	idle := flag.Duration("idle-timeout", 10*time.Minute, "end a session after this long without a datagram")
	hsTimeout := flag.Duration("handshake-timeout", 10*time.Second, "handshake timeout")
	handshakes := flag.Int("handshakes", 1024, "handshakes at once (accepting goroutines)")
	statsEvery := flag.Duration("stats-every", 0, "print the counters to stderr this often (0: only on SIGUSR1)")
	flag.Parse()

	if flag.NArg() != 0 {
		usage("unexpected argument %q", flag.Arg(0))
	}

	if *listen == "" || *backendStr == "" || *pskFile == "" {
		usage("--listen, --backend and --psk-file are required")
	}

	laddr, err := net.ResolveUDPAddr("udp", *listen)
	if err != nil {
		usage("bad --listen: %v", err)
	}

	backend, err = net.ResolveUDPAddr("udp", *backendStr)
	if err != nil {
		usage("bad --backend: %v", err)
	}

	if *bind != "" {
		for _, a := range strings.Split(*bind, ",") {
			ip := net.ParseIP(strings.TrimSpace(a))
			if ip == nil {
				usage("bad --bind address %q", a)
			}
			binds = append(binds, &net.UDPAddr{IP: ip})
		}
	}

	if *mtu < 256 || *mtu > 65507 {
		usage("--mtu must be 256 to 65507")
	}

	if *idle <= 0 || *hsTimeout <= 0 {
		usage("timeouts must be positive")
	}

	if *handshakes < 1 {
		usage("--handshakes must be positive")
	}
	idleTimeout = *idle

	var ids []dtls.CipherSuiteID
	for _, name := range strings.FieldsFunc(*cipher, func(r rune) bool {
		return r == ',' || r == ':'
	}) {
		id, ok := suite(strings.TrimSpace(name))
		if !ok {
			usage("unknown cipher %s", name)
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		usage("no cipher")
	}

	pskKeys, err = readPSKFile(*pskFile)
	if err != nil {
		fmt.Fprintf(os.Stderr, "pion_proxy: %v\n", err)
		os.Exit(1)
	}

	hsTimeoutValue := *hsTimeout

	dtlsConfig = &dtls.Config{
		PSK:                  pskLookup,
		CipherSuites:         ids,
		ExtendedMasterSecret: dtls.RequestExtendedMasterSecret,
		MTU:                  *mtu,
		ConnectContextMaker: func() (context.Context, func()) {
			return context.WithTimeout(context.Background(), hsTimeoutValue)
		},
	}

	ln, err := dtls.Listen("udp", laddr, dtlsConfig)
	if err != nil {
		fmt.Fprintf(os.Stderr, "pion_proxy: listen %s: %v\n", laddr, err)
		os.Exit(1)
	}

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR1)

	go func() {
		for sig := range sigs {
			if sig == syscall.SIGUSR1 {
				printStats()
				continue
			}
			atomic.StoreInt32(&closing, 1)
			_ = ln.Close()
			os.Exit(0)
		}
	}()

	if *statsEvery > 0 {
		go func() {
			for range time.Tick(*statsEvery) {
				printStats()
			}
		}()
	}

	for i := 0; i < *handshakes; i++ {
		go acceptLoop(ln)
	}

	fmt.Printf("listening on %s\n", ln.Addr())
	_ = os.Stdout.Sync()

	select {}
}

var closing int32

// a suite by its OpenSSL or its IANA name

func suite(name string) (dtls.CipherSuiteID, bool) {
	if id, ok := suites[name]; ok {
		return id, true
	}

	for _, id := range suites {
		if id.String() == name {
			return id, true
		}
	}

	return 0, false
}

// Accept is pion's handshake: an error is a failed handshake (pion has
// closed its connection then) unless the listener is closing

func acceptLoop(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if atomic.LoadInt32(&closing) != 0 {
				return
			}
			atomic.AddInt64(&stats.failed, 1)
			logErr("handshake: %v", err)
			continue
		}

		atomic.AddInt64(&stats.handshakes, 1)
		go serve(c.(*dtls.Conn))
	}
}

var errUnknownIdentity = errors.New("unknown PSK identity")

func pskLookup(identity []byte) ([]byte, error) {
	key, ok := pskKeys[string(identity)]
	if !ok {
		return nil, errUnknownIdentity
	}
	return key, nil
}

// readPSKFile reads the subset of dtls_psk_file's checks that matters
// here; the key is never printed

func readPSKFile(name string) (map[string][]byte, error) {
	text, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}

	keys := map[string][]byte{}
	first := map[string]int{}

	for i, line := range strings.Split(string(text), "\n") {
		line = strings.TrimLeft(line, " \t")
		line = strings.TrimRight(line, " \t\r")

		if line == "" || line[0] == '#' {
			continue
		}

		bad := func(reason string) error {
			return fmt.Errorf("PSK file %q, line %d: %s", name, i+1, reason)
		}

		colon := strings.LastIndexByte(line, ':')
		if colon < 0 {
			return nil, bad("expected \"identity:hexkey\"")
		}

		id, hexKey := line[:colon], line[colon+1:]

		if len(id) == 0 || len(id) > 128 {
			return nil, bad("identity must be 1 to 128 bytes")
		}

		for j := 0; j < len(id); j++ {
			if id[j] < 0x20 || id[j] > 0x7e {
				return nil, bad("identity must be printable ASCII")
			}
		}

		if len(hexKey)%2 != 0 {
			return nil, bad("key must be an even number of hex digits")
		}

		if len(hexKey)/2 < 16 || len(hexKey)/2 > 64 {
			return nil, bad("key must be 16 to 64 bytes (32 to 128 hex digits)")
		}

		key, err := hex.DecodeString(hexKey)
		if err != nil {
			return nil, bad("key is not hexadecimal")
		}

		if l, dup := first[id]; dup {
			return nil, bad(fmt.Sprintf("duplicate identity %q, first at line %d", id, l))
		}

		first[id] = i + 1
		keys[id] = key
	}

	if len(keys) == 0 {
		return nil, fmt.Errorf("PSK file %q has no keys", name)
	}

	return keys, nil
}

// errors to stderr, at most one line a second (a flood of failing
// handshakes must not become a flood of lines)

var errLog struct {
	sync.Mutex
	last       time.Time
	suppressed int
}

func logErr(format string, args ...interface{}) {
	errLog.Lock()
	defer errLog.Unlock()

	now := time.Now()
	if now.Sub(errLog.last) < time.Second {
		errLog.suppressed++
		return
	}

	if errLog.suppressed > 0 {
		fmt.Fprintf(os.Stderr, "pion_proxy: (%d more errors)\n",
			errLog.suppressed)
		errLog.suppressed = 0
	}

	errLog.last = now
	fmt.Fprintf(os.Stderr, "pion_proxy: "+format+"\n", args...)
}

func printStats() {
	fmt.Fprintf(os.Stderr,
		"pion_proxy: handshakes=%d failed=%d upstream_errors=%d "+
			"active=%d closed=%d\n",
		atomic.LoadInt64(&stats.handshakes),
		atomic.LoadInt64(&stats.failed),
		atomic.LoadInt64(&stats.upstreamErr),
		atomic.LoadInt64(&stats.active),
		atomic.LoadInt64(&stats.closed))
}

type session struct {
	down      *dtls.Conn
	up        *net.UDPConn
	last      int64 // UnixNano of the last datagram either way
	closeOnce sync.Once
}

func serve(dc *dtls.Conn) {
	var local *net.UDPAddr
	if len(binds) > 0 {
		local = binds[(atomic.AddUint64(&bindNext, 1)-1)%uint64(len(binds))]
	}

	up, err := net.DialUDP("udp", local, backend)
	if err != nil {
		atomic.AddInt64(&stats.upstreamErr, 1)
		logErr("upstream socket for %s: %v", dc.RemoteAddr(), err)
		_ = dc.Close()
		return
	}

	atomic.AddInt64(&stats.active, 1)

	s := &session{down: dc, up: up}
	s.touch()

	go s.fromBackend()
	s.fromClient()
}

func (s *session) touch() {
	atomic.StoreInt64(&s.last, time.Now().UnixNano())
}

// after a read of c timed out: whether the session is still live (a
// datagram went either way within idleTimeout); if so, c's reader waits
// again, until idleTimeout after that datagram

func (s *session) live(c interface{ SetReadDeadline(time.Time) error }) bool {
	end := time.Unix(0, atomic.LoadInt64(&s.last)).Add(idleTimeout)
	if !time.Now().Before(end) {
		return false
	}

	_ = c.SetReadDeadline(end)
	return true
}

func (s *session) close() {
	s.closeOnce.Do(func() {
		// Close sends close_notify unless the client's came first
		_ = s.down.Close()
		_ = s.up.Close()
		atomic.AddInt64(&stats.active, -1)
		atomic.AddInt64(&stats.closed, 1)
	})
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// records from the client to the backend, one datagram each

func (s *session) fromClient() {
	defer s.close()

	buf := make([]byte, downBufSize)

	_ = s.down.SetReadDeadline(time.Now().Add(idleTimeout))

	for {
		n, err := s.down.Read(buf)

		if err != nil {
			if isTimeout(err) {
				if !s.live(s.down) {
					return
				}
				continue
			}

			if errors.Is(err, io.EOF) || errors.Is(err, dtls.ErrConnClosed) {
				return
			}

			// a warning alert, a record too large, a read error the
			// connection survives: pion goes on, so do we
			continue
		}

		s.touch()

		// a send error loses the datagram, as UDP may
		if _, err := s.up.Write(buf[:n]); err != nil &&
			errors.Is(err, net.ErrClosed) {
			return
		}
	}
}

// datagrams from the backend to the client, one record each; a buffer is
// taken from the pool only when a datagram is there to read

func (s *session) fromBackend() {
	defer s.close()

	rc, err := s.up.SyscallConn()
	if err != nil {
		return
	}

	_ = s.up.SetReadDeadline(time.Now().Add(idleTimeout))

	for {
		var (
			bp   *[]byte
			n    int
			rerr syscall.Errno
		)

		err := rc.Read(func(fd uintptr) bool {
			b := upPool.Get().(*[]byte)

			for {
				// MSG_TRUNC: n is the datagram's real length
				r, _, e := syscall.Syscall6(syscall.SYS_RECVFROM, fd,
					uintptr(unsafe.Pointer(&(*b)[0])), uintptr(len(*b)),
					syscall.MSG_DONTWAIT|syscall.MSG_TRUNC, 0, 0)

				if e == syscall.EINTR {
					continue
				}

				if e == syscall.EAGAIN {
					upPool.Put(b)
					return false
				}

				bp, n, rerr = b, int(r), e
				return true
			}
		})

		if err != nil {
			if isTimeout(err) && s.live(s.up) {
				continue
			}
			return
		}

		if rerr != 0 {
			upPool.Put(bp)

			// an ICMP port unreachable from the backend: a lost datagram
			if rerr == syscall.ECONNREFUSED {
				continue
			}
			logErr("upstream recv: %v", rerr)
			return
		}

		s.touch()

		if n > len(*bp) {
			upPool.Put(bp)
			continue
		}

		_, err = s.down.Write((*bp)[:n])
		upPool.Put(bp)

		if err != nil && errors.Is(err, dtls.ErrConnClosed) {
			return
		}
	}
}
