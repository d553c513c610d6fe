package sim

import (
	"crypto/tls"
	"fmt"
	"time"

	"github.com/augment-connector/augment-connector/internal/tlsgen"
)

// setupTLS loads the given certificate or makes a CA and a server certificate signed by it. The
// contract requires HTTPS, so the connector is exercised over TLS unless a test asks otherwise.
func (s *Server) setupTLS() error {
	var (
		cert tls.Certificate
		err  error
	)
	switch {
	case len(s.cfg.CertPEM) > 0 || len(s.cfg.KeyPEM) > 0:
		cert, err = tls.X509KeyPair(s.cfg.CertPEM, s.cfg.KeyPEM)
		if err != nil {
			return fmt.Errorf("loading certificate: %w", err)
		}
	default:
		var caPEM []byte
		cert, caPEM, err = tlsgen.Loopback(s.clock(), certValidity, "augment-connector simulator")
		if err != nil {
			return err
		}
		s.caPEM = caPEM
	}
	s.tlsConfig = &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
	}
	return nil
}

// certValidity is how long the generated certificate is valid: a year, for a long-running sandbox.
const certValidity = 365 * 24 * time.Hour
