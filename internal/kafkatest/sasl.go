package kafkatest

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/augment-connector/augment-connector/internal/tlsgen"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// Names of the variables describing a real SASL_SSL (SCRAM-SHA-512) listener; scripts/kafka.sh
// writes all of them to .cache/kafka/env.
const (
	EnvSASLBrokers  = "KAFKA_SASL_BROKERS"
	EnvSASLUser     = "KAFKA_SASL_USER"
	EnvSASLPassword = "KAFKA_SASL_PASSWORD"
	EnvSASLCA       = "KAFKA_SASL_CA" // path of a PEM file with the CA that signed the broker
)

// SASL describes a SASL_SSL listener authenticating with SCRAM-SHA-512.
type SASL struct {
	Seeds    []string
	User     string
	Password string
	CAPEM    []byte // the CA certificate(s) to trust, PEM encoded
}

// Opts returns the client options to reach s: TLS trusting only CAPEM, and SCRAM-SHA-512 with
// User and Password.
func (s SASL) Opts() ([]kgo.Opt, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(s.CAPEM) {
		return nil, fmt.Errorf("parsing CA PEM: no certificate found")
	}
	auth := scram.Auth{User: s.User, Pass: s.Password}
	return []kgo.Opt{
		kgo.SeedBrokers(s.Seeds...),
		kgo.DialTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}),
		kgo.SASL(auth.AsSha512Mechanism()),
	}, nil
}

// SASLFromEnv reads the SASL_SSL listener from KAFKA_SASL_BROKERS, KAFKA_SASL_USER,
// KAFKA_SASL_PASSWORD and KAFKA_SASL_CA; ok is false when KAFKA_SASL_BROKERS is unset. The test
// fails when it is set but another variable is missing or the CA file is unreadable.
func SASLFromEnv(t testing.TB) (seed, user, pass string, caPEM []byte, ok bool) {
	t.Helper()
	seed = os.Getenv(EnvSASLBrokers)
	if seed == "" {
		return "", "", "", nil, false
	}
	user, pass = os.Getenv(EnvSASLUser), os.Getenv(EnvSASLPassword)
	caPath := os.Getenv(EnvSASLCA)
	if user == "" || pass == "" || caPath == "" {
		t.Fatalf("kafkatest: %s is set, so %s, %s and %s must be too", EnvSASLBrokers, EnvSASLUser, EnvSASLPassword, EnvSASLCA)
	}
	caPEM, err := os.ReadFile(caPath)
	if err != nil {
		t.Fatalf("kafkatest: reading %s: %v", EnvSASLCA, err)
	}
	return seed, user, pass, caPEM, true
}

// SASLBrokers returns the SASL_SSL listener from the environment (see SASLFromEnv), failing the
// test if it does not answer within 10 s; without it, a new in-process fake cluster that serves
// only TLS with SCRAM-SHA-512, signed by a CA made for this test and closed by t.Cleanup.
func SASLBrokers(t testing.TB) SASL {
	t.Helper()
	if seed, user, pass, caPEM, ok := SASLFromEnv(t); ok {
		s := SASL{Seeds: splitSeeds(seed), User: user, Password: pass, CAPEM: caPEM}
		opts, err := s.Opts()
		if err != nil {
			t.Fatalf("kafkatest: %s: %v", EnvSASLCA, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), reachTimeout)
		defer cancel()
		if err := waitReachable(ctx, s.Seeds, opts...); err != nil {
			t.Fatalf("kafkatest: %s=%s is unreachable with the configured credentials (%v); start a broker (scripts/kafka.sh up) or unset %s to use the in-process fake",
				EnvSASLBrokers, seed, err, EnvSASLBrokers)
		}
		return s
	}

	serverTLS, caPEM, err := newTestTLS(time.Now())
	if err != nil {
		t.Fatalf("kafkatest: making test certificates: %v", err)
	}
	pass := rand.Text()
	const user = "kafkatest"
	c, err := kfake.NewCluster(
		kfake.DefaultNumPartitions(DefaultPartitions),
		kfake.AllowAutoTopicCreation(),
		kfake.EnableSASL(),
		kfake.Superuser("SCRAM-SHA-512", user, pass),
		kfake.TLS(serverTLS),
	)
	if err != nil {
		t.Fatalf("kafkatest: starting fake SASL cluster: %v", err)
	}
	t.Cleanup(c.Close)
	return SASL{Seeds: c.ListenAddrs(), User: user, Password: pass, CAPEM: caPEM}
}

// newTestTLS makes a throwaway CA and a server TLS config for 127.0.0.1, ::1 and localhost,
// valid from an hour before now for a day.
func newTestTLS(now time.Time) (*tls.Config, []byte, error) {
	cert, caPEM, err := tlsgen.Loopback(now, 24*time.Hour, "kafkatest")
	if err != nil {
		return nil, nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, caPEM, nil
}
