package sim

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/augment-connector/augment-connector/internal/api"
)

// benchInteractions is how many interactions the benchmarks spread their writes over.
const benchInteractions = 64

// benchBody is a valid request of 50 variables (about 5 KB), like a connector's full request.
func benchBody() []byte {
	vars := make([]api.Variable, api.MaxVariablesPerRequest)
	for i := range vars {
		vars[i] = api.Variable{Name: fmt.Sprintf("_customerField%02d", i), Value: fmt.Sprintf("value %d of the customer record", i),
			Display: i%2 == 0, DisplayName: fmt.Sprintf("Field %d", i), DataType: "text", IVR: i%5 == 0}
	}
	return api.AppendRequest(nil, vars, false)
}

func benchServer(b *testing.B) *Server {
	b.Helper()
	s, err := New(Config{Tenants: []Tenant{{ID: tenant1, Token: token1}}, PlainHTTP: true})
	if err != nil {
		b.Fatal(err)
	}
	for i := range benchInteractions {
		if err := s.CreateInteraction("", api.Interaction{InteractionID: fmt.Sprintf("int-%d", i)}); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

// BenchmarkServePOST measures the simulator serving valid 50-variable POSTs over loopback HTTP
// with keep-alive connections, rate limit off, journal on at its default size. client=raw is a
// wrk-like client that writes prepared requests and reads only the status and length, so the
// figure is the server's; client=net-http uses http.Client, whose own cost shares the two cores.
func BenchmarkServePOST(b *testing.B) {
	body := benchBody()
	for _, client := range []string{"raw", "net-http"} {
		b.Run("client="+client, func(b *testing.B) {
			s := benchServer(b)
			base, err := s.Start(context.Background(), "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer func() {
				if err := s.Close(); err != nil {
					b.Error(err)
				}
			}()
			addr := base[len("http://"):]
			tr := &http.Transport{MaxIdleConnsPerHost: 64}
			defer tr.CloseIdleConnections()
			hc := &http.Client{Transport: tr}
			var next atomic.Int64
			b.SetParallelism(4)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				id := fmt.Sprintf("int-%d", next.Add(1)%benchInteractions)
				var err error
				if client == "raw" {
					err = rawClient(pb, addr, id, body)
				} else {
					err = netHTTPClient(pb, hc, base, id, body)
				}
				if err != nil {
					b.Error(err)
				}
			})
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
			if st := s.Stats(); st.ByStatus[200] != uint64(b.N) {
				b.Errorf("%d requests succeeded of %d: %v", st.ByStatus[200], b.N, st.ByStatus)
			}
		})
	}
}

// rawClient sends prepared keep-alive requests on one connection and checks each status.
func rawClient(pb *testing.PB, addr, id string, body []byte) error {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	req := fmt.Appendf(nil, "POST %s%s HTTP/1.1\r\nHost: %s\r\nAuthorization: Basic dDE6c2VjcmV0\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", api.PathPrefix, id, addr, len(body), body)
	br := bufio.NewReaderSize(conn, 4096)
	for pb.Next() {
		if _, err := conn.Write(req); err != nil {
			return err
		}
		status, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if !bytes.HasPrefix(status, []byte("HTTP/1.1 200 ")) {
			return fmt.Errorf("status line %q", status)
		}
		n := -1
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				return err
			}
			if len(line) <= 2 {
				break
			}
			if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
				n, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
			}
		}
		if n < 0 {
			return fmt.Errorf("no Content-Length")
		}
		if _, err := br.Discard(n); err != nil {
			return err
		}
	}
	return nil
}

func netHTTPClient(pb *testing.PB, hc *http.Client, base, id string, body []byte) error {
	url := base + api.PathPrefix + id
	for pb.Next() {
		req, err := http.NewRequest("POST", url, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.SetBasicAuth(tenant1, token1)
		req.Header.Set("Content-Type", "application/json")
		res, err := hc.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			return fmt.Errorf("status %d", res.StatusCode)
		}
	}
	return nil
}

// discardWriter is a minimal http.ResponseWriter for the handler-only benchmark.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(code int)        { w.status = code }

// BenchmarkHandlerPOST measures the handler alone (routing, auth, decoding, validation, merge,
// journal, response) without HTTP parsing or sockets.
func BenchmarkHandlerPOST(b *testing.B) {
	body := benchBody()
	s := benchServer(b)
	h := s.Handler()
	rd := bytes.NewReader(body)
	req, err := http.NewRequest("POST", api.PathPrefix+"int-1", rd)
	if err != nil {
		b.Fatal(err)
	}
	req.SetBasicAuth(tenant1, token1)
	w := &discardWriter{h: make(http.Header)}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(body)
		req.Body = io.NopCloser(rd)
		w.status = 0
		h.ServeHTTP(w, req)
		if w.status != 0 && w.status != 200 {
			b.Fatalf("status %d", w.status)
		}
	}
}
