// Package kafkatest gives integration tests a Kafka cluster and a few helpers to set it up and
// inspect it.
//
// By default every call to [Brokers] starts a fresh in-process fake cluster
// (github.com/twmb/franz-go/pkg/kfake), stopped when the test ends, so `go test` needs nothing
// installed. To run the same tests against a real Apache Kafka broker, set KAFKA_BROKERS to its
// comma-separated bootstrap addresses. The repository ships a throwaway single-node broker:
//
//	scripts/kafka.sh up                      # resolves Kafka with Maven once, starts it, writes .cache/kafka/env
//	env $(cat .cache/kafka/env) go test ./internal/...
//	scripts/kafka.sh down                    # stops it and removes its data
//
// Your own broker works as well (KAFKA_BROKERS=host:9092 go test ./...); it must allow creating
// topics, and tests create uniquely named topics and groups ([UniqueName]) so runs on a shared
// broker do not collide (nothing is deleted afterwards). An unreachable KAFKA_BROKERS fails the
// test instead of skipping it, so a broken setup is never mistaken for a green run.
//
// SASL_SSL tests use [SASLBrokers]: with KAFKA_SASL_BROKERS, KAFKA_SASL_USER, KAFKA_SASL_PASSWORD
// and KAFKA_SASL_CA (a PEM file) set (scripts/kafka.sh writes all four) they reach the real
// broker's SCRAM-SHA-512 listener; otherwise a fake cluster with TLS and SCRAM-SHA-512 is started.
// OAUTHBEARER tests use [OAuthFromEnv] (KAFKA_OAUTH_BROKERS, the same listener with Kafka's
// unsecured JWT validator, and [UnsecuredJWT] for tokens): the fake cluster has no OAUTHBEARER,
// so they skip, saying so, without the real broker, and .ci/run fails if they skip there.
package kafkatest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	// EnvBrokers names the variable holding a real cluster's comma-separated bootstrap addresses.
	EnvBrokers = "KAFKA_BROKERS"

	// EnvGroupProtocol names the variable choosing the consumer group protocol of the
	// connectors tests start: classic (unset) or consumer (KIP-848).
	EnvGroupProtocol = "KAFKA_GROUP_PROTOCOL"

	// DefaultPartitions is the partition count of auto-created topics on the fake cluster, the
	// same as num.partitions in scripts/kafka.sh's broker.
	DefaultPartitions = 6

	// reachTimeout bounds how long Brokers waits for KAFKA_BROKERS to answer before failing.
	reachTimeout = 10 * time.Second

	// opTimeout bounds every helper's round trip so a wedged cluster fails the test, not hangs it.
	opTimeout = 30 * time.Second
)

// Brokers returns seed addresses of a cluster for this test: those in KAFKA_BROKERS when set
// (failing the test if none answers within 10 s), otherwise a new in-process fake cluster with
// DefaultPartitions partitions per auto-created topic, closed by t.Cleanup.
func Brokers(t testing.TB) []string {
	t.Helper()
	if env := os.Getenv(EnvBrokers); env != "" {
		seeds := splitSeeds(env)
		ctx, cancel := context.WithTimeout(context.Background(), reachTimeout)
		defer cancel()
		if err := waitReachable(ctx, seeds); err != nil {
			t.Fatalf("kafkatest: %s=%s is unreachable (%v); start a broker (scripts/kafka.sh up) or unset %s to use the in-process fake",
				EnvBrokers, env, err, EnvBrokers)
		}
		return seeds
	}
	c, err := kfake.NewCluster(
		kfake.DefaultNumPartitions(DefaultPartitions),
		kfake.AllowAutoTopicCreation(),
	)
	if err != nil {
		t.Fatalf("kafkatest: starting fake cluster: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// GroupOpts returns the client options of the group protocol KAFKA_GROUP_PROTOCOL names (as
// kafka.groupProtocol does in the config): kgo.ServerSideBalancer for consumer, none for
// classic or unset. Both the fake cluster and Kafka 4.x brokers speak either protocol.
func GroupOpts(t testing.TB) []kgo.Opt {
	switch p := os.Getenv(EnvGroupProtocol); p {
	case "", "classic":
		return nil
	case "consumer":
		return []kgo.Opt{kgo.ServerSideBalancer()}
	default:
		t.Fatalf("kafkatest: %s=%q: want classic or consumer", EnvGroupProtocol, p)
		return nil
	}
}

// splitSeeds splits a comma-separated address list, dropping blanks.
func splitSeeds(s string) []string {
	var seeds []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			seeds = append(seeds, a)
		}
	}
	return seeds
}

// waitReachable pings the seeds until one answers a metadata request or ctx ends. A single Ping
// fails at once on a refused connection, so it is retried: a broker that is still starting is
// given the whole timeout.
func waitReachable(ctx context.Context, seeds []string, opts ...kgo.Opt) error {
	if len(seeds) == 0 {
		return errors.New("no seed addresses")
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seeds...)}, opts...)...)
	if err != nil {
		return fmt.Errorf("creating client: %w", err)
	}
	defer cl.Close()
	for {
		err := cl.Ping(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pinging %v: %w", seeds, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Client returns a client for seeds with opts appended, closed by t.Cleanup.
func Client(t testing.TB, seeds []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seeds...)}, opts...)...)
	if err != nil {
		t.Fatalf("kafkatest: creating client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// UniqueName returns a valid topic or group name made of prefix, the test's name and a random
// suffix, so that tests sharing a real broker (or reruns of one test) never reuse a topic.
func UniqueName(t testing.TB, prefix string) string {
	t.Helper()
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("kafkatest: reading random bytes: %v", err)
	}
	// Kafka allows [a-zA-Z0-9._-] up to 249 characters; '_' is mapped too because Kafka's metric
	// names treat '.' and '_' alike and warns on topics mixing them.
	name := sanitize(t.Name())
	if len(name) > 150 {
		name = name[:150]
	}
	return sanitize(prefix) + "." + name + "." + hex.EncodeToString(b[:])
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-':
			return r
		default:
			return '-'
		}
	}, s)
}

// CreateTopic creates topic with the given number of partitions and the cluster's default
// replication factor, failing the test on any error (an existing topic included).
func CreateTopic(t testing.TB, seeds []string, topic string, partitions int32) {
	t.Helper()
	adm := kadm.NewClient(Client(t, seeds))
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	err := Retry(ctx, func() error {
		resp, err := adm.CreateTopic(ctx, partitions, -1, nil, topic)
		if err != nil {
			return err
		}
		return resp.Err
	})
	if err != nil {
		t.Fatalf("kafkatest: creating topic %q: %v", topic, err)
	}
}

// ProduceSync produces recs and waits for all of them to be acknowledged, failing the test on
// the first error. On return each record's Partition and Offset are set.
func ProduceSync(t testing.TB, seeds []string, recs ...*kgo.Record) {
	t.Helper()
	cl := Client(t, seeds)
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("kafkatest: producing %d records: %v", len(recs), err)
	}
}

// CommittedOffsets returns group's committed offset for each partition of topic that has one
// (the offset of the next record to consume).
func CommittedOffsets(t testing.TB, seeds []string, group, topic string) map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	out, err := FetchCommitted(ctx, kadm.NewClient(Client(t, seeds)), group, topic)
	if err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
	return out
}

// FetchCommitted returns group's committed offset for each partition of topic that has one,
// through adm, retrying what Kafka calls retriable until ctx ends. A group that never
// committed has none (an empty map).
func FetchCommitted(ctx context.Context, adm *kadm.Client, group, topic string) (map[int32]int64, error) {
	var resps kadm.OffsetResponses
	err := Retry(ctx, func() error {
		var err error
		if resps, err = adm.FetchOffsetsForTopics(ctx, group, topic); err != nil {
			return err
		}
		return resps.Error()
	})
	// Kafka answers a group that never committed with offsets of -1, kfake with this error.
	if errors.Is(err, kerr.GroupIDNotFound) {
		return map[int32]int64{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("fetching offsets of group %q: %w", group, err)
	}
	out := make(map[int32]int64)
	for p, r := range resps[topic] {
		// FetchOffsetsForTopics reports uncommitted partitions with offset -1.
		if r.At >= 0 {
			out[p] = r.At
		}
	}
	return out, nil
}

// EndOffsets returns the end offset (the offset the next produced record gets) of each
// partition of topic.
func EndOffsets(t testing.TB, seeds []string, topic string) map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	out, err := ListEnd(ctx, kadm.NewClient(Client(t, seeds)), topic)
	if err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
	return out
}

// ListEnd returns the end offset of each partition of topic through adm, retrying what Kafka
// calls retriable until ctx ends.
func ListEnd(ctx context.Context, adm *kadm.Client, topic string) (map[int32]int64, error) {
	var offs kadm.ListedOffsets
	err := Retry(ctx, func() error {
		var err error
		if offs, err = adm.ListEndOffsets(ctx, topic); err != nil {
			return err
		}
		return offs.Error()
	})
	if err != nil {
		return nil, fmt.Errorf("listing end offsets of %q: %w", topic, err)
	}
	out := make(map[int32]int64)
	for p, o := range offs[topic] {
		out[p] = o.Offset
	}
	return out, nil
}

// Retry calls fn until it returns nil or an error Kafka does not call retriable, or ctx ends.
// A fresh real broker answers the first group request with COORDINATOR_NOT_AVAILABLE while it
// creates __consumer_offsets, and kadm hands that straight back.
func Retry(ctx context.Context, fn func() error) error {
	for {
		err := fn()
		if err == nil || !kerr.IsRetriable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("retrying until the deadline: %w", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
