package ledger

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The ledger topic's settings. docs/LEDGER.md says why each matters.
const (
	// topicRetention keeps an hour: far more than a rebuild reads (claimValidity +
	// requestTimeout + 60 s + ε), little enough to stay small.
	topicRetention = "3600000"
	// topicSegment rolls segments every 10 minutes, so retention can delete old ones.
	topicSegment = "600000"
	// minRetentionMs is the shortest retention EnsureTopic accepts on an existing topic: a
	// rebuild must find every record of its horizon (97 s by default; 10 minutes leaves
	// room for a long request timeout).
	minRetentionMs = 600_000
	// safeReplicas and safeMinISR keep an acknowledged record once read back through the
	// loss of one broker.
	safeReplicas = 3
	safeMinISR   = 2
	// AllowUnsafeKey is the connector's configuration key that accepts an unsafe topic.
	allowUnsafeKey = "budget.ledger.allowUnsafeTopic"
)

// EnsureTopic creates the ledger topic when missing (one partition, LogAppendTime,
// cleanup.policy=delete, retention one hour, short segments) and checks an existing one's
// settings. It returns an error naming each unsafe setting (unless AllowUnsafe) and the
// warnings accepted.
//
// It refuses, whatever AllowUnsafe says, a topic the ledger cannot work on: more than one
// partition (records must be read in one order), a producer timestamp type (log times are
// the ledger's clock), compaction or a retention shorter than ten minutes (a rebuild must
// find its whole horizon). It refuses unless AllowUnsafe a topic that could lose a record
// once read back: fewer than 3 replicas, min.insync.replicas below 2, unclean leader
// election; and it will not create a topic on a cluster of fewer than 3 brokers.
func EnsureTopic(ctx context.Context, cl *kgo.Client, o TopicOptions) (warnings []string, err error) {
	if o.Topic == "" {
		o.Topic = DefaultTopic
	}
	adm := kadm.NewClient(cl)
	td, err := describeTopic(ctx, cl, o.Topic)
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		if warnings, err = createTopic(ctx, adm, o); err != nil {
			return warnings, err
		}
		// A new topic takes a moment to appear in every broker's metadata.
		for {
			td, err = describeTopic(ctx, cl, o.Topic)
			if !errors.Is(err, kerr.UnknownTopicOrPartition) {
				break
			}
			select {
			case <-ctx.Done():
				return warnings, fmt.Errorf("ledger: waiting for the new topic %s: %w", o.Topic, ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	if err != nil {
		return warnings, err
	}
	more, err := checkTopic(ctx, adm, o, td)
	return append(warnings, more...), err
}

// topicShape is what the metadata says of a topic: its partitions' replica counts.
type topicShape struct {
	replicas []int // per partition
}

// describeTopic asks a broker for topic's metadata directly (kadm's ListTopics may answer
// from the client's metadata cache, which does not see a topic just created).
func describeTopic(ctx context.Context, cl *kgo.Client, topic string) (topicShape, error) {
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return topicShape{}, fmt.Errorf("ledger: describing topic %s: %w", topic, err)
	}
	for _, t := range resp.Topics {
		if t.Topic == nil || *t.Topic != topic {
			continue
		}
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return topicShape{}, fmt.Errorf("ledger: describing topic %s: %w", topic, err)
		}
		var s topicShape
		for _, p := range t.Partitions {
			s.replicas = append(s.replicas, len(p.Replicas))
		}
		return s, nil
	}
	return topicShape{}, fmt.Errorf("ledger: describing topic %s: %w", topic, kerr.UnknownTopicOrPartition)
}

func createTopic(ctx context.Context, adm *kadm.Client, o TopicOptions) ([]string, error) {
	brokers, err := adm.ListBrokers(ctx)
	if err != nil {
		return nil, fmt.Errorf("ledger: listing brokers to create %s: %w", o.Topic, err)
	}
	rf := o.Replication
	if rf == 0 {
		rf = min(safeReplicas, int16(len(brokers)))
	}
	if rf < safeReplicas && !o.AllowUnsafe { // when allowed, the check after creating warns
		return nil, fmt.Errorf("ledger: refusing to create %s with replication factor %d (the cluster has %d broker(s)): a record read back could be lost with its broker; it needs %d replicas and min.insync.replicas=%d; for a one-node test cluster set %s: true",
			o.Topic, rf, len(brokers), safeReplicas, safeMinISR, allowUnsafeKey)
	}
	configs := map[string]*string{
		"message.timestamp.type": kadm.StringPtr("LogAppendTime"),
		"cleanup.policy":         kadm.StringPtr("delete"),
		"retention.ms":           kadm.StringPtr(topicRetention),
		"segment.ms":             kadm.StringPtr(topicSegment),
	}
	if rf >= safeReplicas {
		configs["min.insync.replicas"] = kadm.StringPtr(strconv.Itoa(safeMinISR))
	}
	_, err = adm.CreateTopic(ctx, 1, rf, configs, o.Topic)
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) { // another member created it first: check it
		return nil, fmt.Errorf("ledger: creating topic %s: %w", o.Topic, err)
	}
	return nil, nil
}

// checkTopic checks an existing topic's partitions, replicas and configs.
func checkTopic(ctx context.Context, adm *kadm.Client, o TopicOptions, td topicShape) ([]string, error) {
	rcs, err := adm.DescribeTopicConfigs(ctx, o.Topic)
	if err != nil {
		return nil, fmt.Errorf("ledger: describing configs of %s: %w", o.Topic, err)
	}
	rc, err := rcs.On(o.Topic, nil)
	if err == nil {
		err = rc.Err
	}
	if err != nil {
		return nil, fmt.Errorf("ledger: describing configs of %s: %w", o.Topic, err)
	}
	cfg := make(map[string]string, len(rc.Configs))
	for _, c := range rc.Configs {
		cfg[c.Key] = c.MaybeValue()
	}
	return judgeTopic(o, td, cfg)
}

// judgeTopic decides on a topic from its shape and its configs: an error naming every
// setting that is wrong and what it must be, or the unsafe ones accepted as warnings.
func judgeTopic(o TopicOptions, td topicShape, cfg map[string]string) ([]string, error) {
	var broken, unsafe []string
	if n := len(td.replicas); n != 1 {
		broken = append(broken, fmt.Sprintf("partitions is %d, must be 1", n))
	}
	if v := cfg["message.timestamp.type"]; v != "LogAppendTime" {
		broken = append(broken, fmt.Sprintf("message.timestamp.type is %q, must be LogAppendTime", v))
	}
	if v, ok := cfg["cleanup.policy"]; ok && strings.Contains(v, "compact") {
		broken = append(broken, fmt.Sprintf("cleanup.policy is %q, must be delete", v))
	}
	if v, ok := cfg["retention.ms"]; ok {
		if ms, err := strconv.ParseInt(v, 10, 64); err == nil && ms >= 0 && ms < minRetentionMs {
			broken = append(broken, fmt.Sprintf("retention.ms is %d, must be at least %d (or -1)", ms, minRetentionMs))
		}
	}
	replicas := 0
	for _, r := range td.replicas {
		replicas = r
	}
	if replicas < safeReplicas {
		unsafe = append(unsafe, fmt.Sprintf("replication factor is %d, must be at least %d", replicas, safeReplicas))
	}
	if v := cfg["min.insync.replicas"]; v != "" {
		if n, err := strconv.Atoi(v); err == nil && n < safeMinISR {
			unsafe = append(unsafe, fmt.Sprintf("min.insync.replicas is %d, must be at least %d", n, safeMinISR))
		}
	} else {
		unsafe = append(unsafe, fmt.Sprintf("min.insync.replicas is not reported, must be at least %d", safeMinISR))
	}
	if v := cfg["unclean.leader.election.enable"]; v == "true" {
		unsafe = append(unsafe, "unclean.leader.election.enable is true, must be false")
	}

	if len(broken) > 0 {
		return nil, fmt.Errorf("ledger: topic %s cannot hold the ledger: %s", o.Topic, strings.Join(append(broken, unsafe...), "; "))
	}
	if len(unsafe) > 0 && !o.AllowUnsafe {
		return nil, fmt.Errorf("ledger: topic %s could lose an acknowledged record: %s; fix the topic, or for a one-node test cluster set %s: true",
			o.Topic, strings.Join(unsafe, "; "), allowUnsafeKey)
	}
	var warnings []string
	for _, u := range unsafe {
		warnings = append(warnings, fmt.Sprintf("topic %s: %s (accepted: %s)", o.Topic, u, allowUnsafeKey))
	}
	return warnings, nil
}
