package app

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"go.uber.org/zap"

	"github.com/augment-connector/augment-connector/connector"
	"github.com/augment-connector/augment-connector/internal/config"
	"github.com/augment-connector/augment-connector/internal/offsets"
)

// liveTimeout bounds each step of CheckLive, so an unreachable part fails its line rather than
// hanging the check.
const liveTimeout = 15 * time.Second

// CheckLive checks the config against the environment it names, one line per check, "ok" or
// "FAIL" with what is wrong and the setting to look at, and returns how many failed:
//
//   - the brokers answer with the configured TLS and SASL;
//   - every topic of the pipelines and tables exists (its partitions are printed);
//   - the consumer group's state and lag (never a failure: a new group has none);
//   - the schema registry answers and has the value subject (TopicNameStrategy) of each topic
//     decoded with avro-registry;
//   - the dead-letter topic exists and accepts a write (one empty record with the header
//     augment.check, which replay skips), or may be created (a validate-only CreateTopics);
//   - each tenant's token is accepted: one GET of an interaction id that cannot exist, where a
//     404 proves the token and a 401 or 403 does not. It spends one request of the tenant's
//     budget, and says so.
//
// Nothing else is written: no offset is committed, no variable sent.
func (c *Compiled) CheckLive(ctx context.Context, w io.Writer, log *zap.Logger) (failed int) {
	report := func(name string, err error, detail string) {
		if err != nil {
			failed++
			fmt.Fprintf(w, "FAIL %s: %v\n", name, err)
			return
		}
		fmt.Fprintf(w, "ok   %s: %s\n", name, detail)
	}
	cfg := c.Config
	kopts, err := cfg.KafkaOpts()
	if err != nil {
		report("kafka", err, "")
		return failed
	}
	cl, err := kgo.NewClient(append(kopts, kgo.RequestRetries(1))...)
	if err != nil {
		report("kafka", err, "")
		return failed
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	kafkaOK := c.checkBrokers(ctx, adm, report)
	if kafkaOK {
		c.checkTopics(ctx, adm, report)
		c.checkGroup(ctx, adm, report)
		c.checkDeadLetterTopic(ctx, cl, adm, report)
	}
	c.checkRegistry(ctx, report)
	c.checkTenants(ctx, log, report)
	return failed
}

type reportFunc func(name string, err error, detail string)

func (c *Compiled) checkBrokers(ctx context.Context, adm *kadm.Client, report reportFunc) bool {
	ctx, cancel := context.WithTimeout(ctx, liveTimeout)
	defer cancel()
	md, err := adm.BrokerMetadata(ctx)
	if err != nil {
		report("kafka", fmt.Errorf("the brokers %s do not answer: %w (kafka.brokers, kafka.tls, kafka.sasl)", strings.Join(c.Config.Kafka.Brokers, ","), err), "")
		return false
	}
	auth := "no SASL"
	if m := c.Config.Kafka.SASL.Mechanism; m != "" {
		auth = "SASL " + m
	}
	tls := "no TLS"
	if c.Config.Kafka.TLS.Enabled {
		tls = "TLS"
	}
	report("kafka", nil, fmt.Sprintf("%d broker(s) answer (%s, %s), cluster %s", len(md.Brokers), tls, auth, md.Cluster))
	return true
}

// topicsUsed returns each topic the pipelines and tables read, with the setting naming it.
func (c *Compiled) topicsUsed() map[string]string {
	out := map[string]string{}
	for i, pc := range c.Config.Pipelines {
		for j, t := range pc.Topics {
			out[t] = fmt.Sprintf("pipelines[%d].topics[%d]", i, j)
		}
	}
	for i, tc := range c.Config.Tables {
		if _, ok := out[tc.Topic]; !ok {
			out[tc.Topic] = fmt.Sprintf("tables[%d].topic", i)
		}
	}
	return out
}

func (c *Compiled) checkTopics(ctx context.Context, adm *kadm.Client, report reportFunc) {
	used := c.topicsUsed()
	names := slices.Sorted(maps.Keys(used))
	ctx, cancel := context.WithTimeout(ctx, liveTimeout)
	defer cancel()
	details, err := adm.ListTopics(ctx, names...)
	if err != nil {
		report("topics", fmt.Errorf("listing topics: %w", err), "")
		return
	}
	for _, t := range names {
		d, ok := details[t]
		switch {
		case !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition) || (d.Err == nil && len(d.Partitions) == 0):
			report("topic "+t, fmt.Errorf("does not exist (%s)", used[t]), "")
		case d.Err != nil:
			report("topic "+t, fmt.Errorf("%w (%s; the principal may lack Describe on it)", d.Err, used[t]), "")
		default:
			report("topic "+t, nil, fmt.Sprintf("%d partitions", len(d.Partitions)))
		}
	}
}

func (c *Compiled) checkGroup(ctx context.Context, adm *kadm.Client, report reportFunc) {
	group := c.Config.Kafka.GroupID
	var topics []string
	for _, pc := range c.Config.Pipelines {
		topics = append(topics, pc.Topics...)
	}
	ctx, cancel := context.WithTimeout(ctx, liveTimeout)
	defer cancel()
	state := "no members"
	if c.Config.Kafka.GroupProtocol == config.GroupProtocolConsumer {
		if gs, err := adm.DescribeConsumerGroups(ctx, group); err == nil {
			if g, ok := gs[group]; ok && g.Err == nil && len(g.Members) > 0 {
				state = fmt.Sprintf("%s, %d member(s)", g.State, len(g.Members))
			}
		}
	} else if gs, err := adm.DescribeGroups(ctx, group); err == nil {
		if g, ok := gs[group]; ok && g.Err == nil && len(g.Members) > 0 {
			state = fmt.Sprintf("%s, %d member(s)", g.State, len(g.Members))
		}
	}
	lags, err := offsets.Lag(ctx, adm, group, topics...)
	// A coordinator that is not available yet (the offsets topic being created on a young
	// cluster, a leader moving) answers a retriable error: ask again within liveTimeout.
	for err != nil && kerr.IsRetriable(err) && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
		lags, err = offsets.Lag(ctx, adm, group, topics...)
	}
	if err != nil {
		report("group "+group, fmt.Errorf("reading its offsets: %w (kafka.groupId; the principal needs Describe on the group)", err), "")
		return
	}
	_, _, lag := lags.Totals()
	report("group "+group, nil, fmt.Sprintf("%s; lag %d records over %d partitions", state, lag, len(lags)))
}

func (c *Compiled) checkDeadLetterTopic(ctx context.Context, cl *kgo.Client, adm *kadm.Client, report reportFunc) {
	topic := c.Config.DeadLetter.Topic
	if topic == "" {
		report("dead-letter topic", nil, "none configured (deadLetter.topic): a record that cannot succeed stops its pipeline")
		return
	}
	name := "dead-letter topic " + topic
	ctx, cancel := context.WithTimeout(ctx, liveTimeout)
	defer cancel()
	details, err := adm.ListTopics(ctx, topic)
	if err != nil {
		report(name, fmt.Errorf("listing it: %w", err), "")
		return
	}
	if d, ok := details[topic]; !ok || len(d.Partitions) == 0 {
		resp, err := adm.ValidateCreateTopics(ctx, -1, -1, nil, topic)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			report(name, fmt.Errorf("does not exist and may not be created: %w (deadLetter.topic; create it, or grant Create)", err), "")
			return
		}
		report(name, nil, "does not exist; the connector may create it (validated, not created)")
		return
	}
	rec := &kgo.Record{Topic: topic, Headers: []kgo.RecordHeader{{Key: connector.HeaderCheck, Value: []byte("live")}}}
	if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		report(name, fmt.Errorf("exists but refuses a write: %w (deadLetter.topic; grant Write)", err), "")
		return
	}
	report(name, nil, fmt.Sprintf("exists and accepts a write (one empty record with header %s, which replay skips)", connector.HeaderCheck))
}

func (c *Compiled) checkRegistry(ctx context.Context, report reportFunc) {
	var topics []string
	for _, pc := range c.Config.Pipelines {
		if pc.Decode.Format == config.FormatAvroRegistry {
			topics = append(topics, pc.Topics...)
		}
	}
	for _, tc := range c.Config.Tables {
		if tc.Decode.Format == config.FormatAvroRegistry {
			topics = append(topics, tc.Topic)
		}
	}
	if len(topics) == 0 {
		return
	}
	slices.Sort(topics)
	topics = slices.Compact(topics)
	ropts, err := c.Config.RegistryOpts()
	if err != nil {
		report("schema registry", err, "")
		return
	}
	rc, err := sr.NewClient(ropts...)
	if err != nil {
		report("schema registry", err, "")
		return
	}
	ctx, cancel := context.WithTimeout(ctx, liveTimeout)
	defer cancel()
	subjects, err := rc.Subjects(ctx)
	if err != nil {
		report("schema registry", fmt.Errorf("%s does not answer: %w (schemaRegistry.urls, its TLS and credentials)", strings.Join(c.Config.SchemaRegistry.URLs, ","), err), "")
		return
	}
	report("schema registry", nil, fmt.Sprintf("answers, %d subjects", len(subjects)))
	for _, t := range topics {
		subject := t + "-value"
		if !slices.Contains(subjects, subject) {
			report("subject "+subject, fmt.Errorf("not found: nothing has registered the schema of %s's values under the TopicNameStrategy yet", t), "")
			continue
		}
		report("subject "+subject, nil, "found")
	}
}

func (c *Compiled) checkTenants(ctx context.Context, log *zap.Logger, report reportFunc) {
	opts, err := c.Options(log)
	if err != nil {
		report("tenants", err, "")
		return
	}
	for _, name := range slices.Sorted(maps.Keys(opts.Tenants)) {
		label := "tenant " + name
		id := "augment-connector-check-" + rand.Text()
		_, err := connector.GetInteraction(ctx, opts.Tenants[name], id)
		var se *connector.StatusError
		switch {
		case errors.As(err, &se) && se.Status == http.StatusNotFound:
			report(label, nil, "token accepted (a GET of an interaction that cannot exist answered 404; it spent one request of the budget)")
		case errors.As(err, &se) && (se.Status == http.StatusUnauthorized || se.Status == http.StatusForbidden):
			report(label, fmt.Errorf("the token is refused: %s (tenants.%s.token, tenantId)", se.Message, name), "")
		case err != nil:
			report(label, fmt.Errorf("%w (tenants.%s.baseURL or cluster)", err, name), "")
		default:
			report(label, nil, "token accepted (the GET answered 200; it spent one request of the budget)")
		}
	}
}
