// A franz-go client for scripts/capture_frames.py: it produces, consumes in a group, commits and
// sends a few admin requests, so the recording proxy in front of kop sees franz-go's encodings.
//
//	go run . <bootstrap> <topic> <group>
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func main() {
	bootstrap, topic, group := os.Args[1], os.Args[2], os.Args[3]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	admin, err := kgo.NewClient(kgo.SeedBrokers(bootstrap))
	must(err)
	create := kmsg.NewPtrCreateTopicsRequest()
	t := kmsg.NewCreateTopicsRequestTopic()
	t.Topic, t.NumPartitions, t.ReplicationFactor = topic, 2, 1
	create.Topics = append(create.Topics, t)
	_, err = create.RequestWith(ctx, admin)
	must(err)
	describe := kmsg.NewPtrDescribeConfigsRequest()
	r := kmsg.NewDescribeConfigsRequestResource()
	r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeTopic, topic
	describe.Resources = append(describe.Resources, r)
	_, err = describe.RequestWith(ctx, admin)
	must(err)

	producer, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.DefaultProduceTopic(topic),
		kgo.ProducerBatchCompression(kgo.Lz4Compression()))
	must(err)
	for i := 0; i < 3; i++ {
		must(producer.ProduceSync(ctx, &kgo.Record{Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte("franz-go"),
			Headers: []kgo.RecordHeader{{Key: "h", Value: []byte("v")}}}).FirstErr())
	}
	producer.Close()

	consumer, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	must(err)
	seen := 0
	for seen < 3 {
		fetches := consumer.PollFetches(ctx)
		must(ctx.Err())
		fetches.EachRecord(func(*kgo.Record) { seen++ })
	}
	must(consumer.CommitUncommittedOffsets(ctx))
	consumer.Close() // leaves the group

	listGroups := kmsg.NewPtrListGroupsRequest()
	_, err = listGroups.RequestWith(ctx, admin)
	must(err)
	deleteTopics := kmsg.NewPtrDeleteTopicsRequest()
	deleteTopics.TopicNames = []string{topic}
	dt := kmsg.NewDeleteTopicsRequestTopic()
	dt.Topic = kmsg.StringPtr(topic)
	deleteTopics.Topics = append(deleteTopics.Topics, dt)
	_, err = deleteTopics.RequestWith(ctx, admin)
	must(err)
	admin.Close()
}
