package kafkatest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestSASLSSL creates a topic, produces and consumes over SASL_SSL with SCRAM-SHA-512, trusting
// only the listener's CA: the real broker's when KAFKA_SASL_BROKERS is set, else the fake's.
func TestSASLSSL(t *testing.T) {
	s := SASLBrokers(t)
	opts, err := s.Opts()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	cl := Client(t, s.Seeds, opts...)
	topic := UniqueName(t, "sasl")
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, 2, -1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("creating topic over SASL_SSL: %v", err)
	}

	var want []string
	var recs []*kgo.Record
	for i := range 5 {
		v := fmt.Sprintf("secret-%d", i)
		want = append(want, v)
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte("one-key"), Value: []byte(v)})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("producing over SASL_SSL: %v", err)
	}

	consumer := Client(t, s.Seeds, append(opts,
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)...)
	var got []string
	for len(got) < len(want) {
		fs := consumer.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("consuming over SASL_SSL after %d records: %v", len(got), err)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("consumed values mismatch (-want +got):\n%s", diff)
	}
}

// TestSASLWrongPassword checks that bad credentials end in a SASL authentication error well
// within 15 s instead of a client retrying until its deadline.
func TestSASLWrongPassword(t *testing.T) {
	s := SASLBrokers(t)
	s.Password += "-wrong"
	opts, err := s.Opts()
	if err != nil {
		t.Fatal(err)
	}
	cl := Client(t, s.Seeds, opts...)

	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	start := time.Now()
	err = cl.Ping(ctx)
	elapsed := time.Since(start)
	if err == nil {
		t.Fatal("Ping with a wrong password succeeded")
	}
	if _, _, _, _, real := SASLFromEnv(t); real {
		if !errors.Is(err, kerr.SaslAuthenticationFailed) {
			t.Errorf("Ping error = %v, want kerr.SaslAuthenticationFailed", err)
		}
	} else if !errors.Is(err, io.EOF) {
		// kfake does not answer a failed SCRAM exchange with SASL_AUTHENTICATION_FAILED as
		// Kafka does: it closes the connection, which kgo reports as EOF.
		t.Errorf("Ping error against kfake = %v, want io.EOF (connection closed by the fake)", err)
	}
	if ctx.Err() != nil {
		t.Errorf("Ping hung until the 15s deadline (%v) instead of failing fast", elapsed)
	}
	t.Logf("wrong password rejected in %v: %v", elapsed.Round(time.Millisecond), err)
}

// TestSASLUntrustedCA checks the listener really is TLS with a certificate the test verifies: a
// client trusting another CA must fail the handshake.
func TestSASLUntrustedCA(t *testing.T) {
	s := SASLBrokers(t)
	_, otherCA, err := newTestTLS(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s.CAPEM = otherCA
	opts, err := s.Opts()
	if err != nil {
		t.Fatal(err)
	}
	cl := Client(t, s.Seeds, opts...)
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	err = cl.Ping(ctx)
	var verr *tls.CertificateVerificationError
	if !errors.As(err, &verr) {
		t.Errorf("Ping trusting another CA = %v, want a certificate verification error", err)
	}
}
