package sim

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/augment-connector/augment-connector/internal/api"
	"github.com/augment-connector/augment-connector/internal/tlsgen"
)

// startTLS starts a simulator over HTTPS and returns it with its URL.
func startTLS(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	cfg.Tenants = []Tenant{{ID: tenant1, Token: token1}}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	url, err := s.Start(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if err := s.CreateInteraction("", api.Interaction{InteractionID: "int-1"}); err != nil {
		t.Fatal(err)
	}
	return s, url
}

// clientTrusting returns a client that trusts only the CA in caPEM.
func clientTrusting(t *testing.T, caPEM []byte, h2 bool) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("no certificate in the CA PEM")
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, ForceAttemptHTTP2: h2}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func postTo(c *http.Client, url string) (*http.Response, error) {
	req, err := http.NewRequest("POST", url+api.PathPrefix+"int-1", strings.NewReader(body(api.Variable{Name: "_a", Value: "1"})))
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth(tenant1, token1)
	res, err := c.Do(req)
	if err == nil {
		res.Body.Close()
	}
	return res, err
}

func TestHTTPSWithGeneratedCA(t *testing.T) {
	s, url := startTLS(t, Config{})
	if !strings.HasPrefix(url, "https://127.0.0.1:") {
		t.Fatalf("URL %q, want https on 127.0.0.1", url)
	}
	block, _ := pem.Decode(s.CACertPEM())
	if block == nil {
		t.Fatal("CACertPEM is not PEM")
	}
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if pub, ok := ca.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() || !ca.IsCA {
		t.Errorf("CA: key %T, IsCA %v; want an ECDSA P-256 CA", ca.PublicKey, ca.IsCA)
	}
	for _, h2 := range []bool{false, true} {
		c := clientTrusting(t, s.CACertPEM(), h2)
		res, err := postTo(c, url)
		if err != nil {
			t.Fatalf("POST over HTTPS (h2 %v): %v", h2, err)
		}
		if res.StatusCode != 200 || (res.ProtoMajor == 2) != h2 {
			t.Errorf("h2 %v: status %d over %s", h2, res.StatusCode, res.Proto)
		}
	}
	// The certificate names localhost too.
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(url, "https://"))
	if res, err := postTo(clientTrusting(t, s.CACertPEM(), false), "https://localhost:"+port); err != nil || res.StatusCode != 200 {
		t.Errorf("POST to localhost: %v", err)
	}
	// A client that does not trust the CA refuses the server.
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	_, err = postTo(&http.Client{Transport: tr}, url)
	var verr *tls.CertificateVerificationError
	if !errors.As(err, &verr) {
		t.Errorf("POST with system roots: %v, want a certificate verification error", err)
	}
}

func TestHTTPSDropResetsHTTP2Stream(t *testing.T) {
	s, url := startTLS(t, Config{Faults: Faults{DropRate: 1}})
	if _, err := postTo(clientTrusting(t, s.CACertPEM(), true), url); err == nil {
		t.Error("POST over HTTP/2 got a response, want the stream reset")
	}
	if ia, _ := s.Interaction("", "int-1"); len(ia.Variables) != 0 {
		t.Errorf("a dropped request was applied")
	}
}

func TestHTTPSWithGivenCertificate(t *testing.T) {
	cert, caPEM, err := tlsgen.Loopback(time.Now(), certValidity, "augment-connector simulator")
	if err != nil {
		t.Fatal(err)
	}
	var certPEM []byte
	for _, der := range cert.Certificate {
		certPEM = append(certPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	keyDER, err := x509.MarshalECPrivateKey(cert.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	s, url := startTLS(t, Config{CertPEM: certPEM, KeyPEM: keyPEM})
	if s.CACertPEM() != nil {
		t.Error("CACertPEM is set for a given certificate")
	}
	if res, err := postTo(clientTrusting(t, caPEM, false), url); err != nil || res.StatusCode != 200 {
		t.Errorf("POST with the given certificate: %v", err)
	}
	if _, err := New(Config{Tenants: []Tenant{{ID: "a", Token: "b"}}, CertPEM: certPEM, KeyPEM: []byte("junk")}); err == nil {
		t.Error("New accepted a bad key")
	}
}
