import java.time.Duration;
import java.util.Arrays;
import java.util.Locale;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;

/**
 * The Kafka Streams application of kop's tests (tests/clients/apps/test_streams.py): a word count and a
 * stream-table join, at-least-once.
 *
 * <pre>
 * lines --flatMap/selectKey(word)--> words --groupByKey/count (store "word-counts")--> counts (Long)
 *                                      \--join(KTable categories: word -> category)--> joined ("category:word")
 * </pre>
 *
 * Re-keying by word makes Streams create repartition topics, the count store and the table their
 * changelog topics: CreateTopics with Streams' own configs, a group with Streams' assignor,
 * DeleteRecords on the repartition topics after commits, changelog restoration after a restart.
 *
 * Arguments: bootstrap applicationId linesTopic categoriesTopic countsTopic joinedTopic stateDir
 * [processingGuarantee: at_least_once (the default) or exactly_once_v2].
 * Prints "STATE <new state>" on every state change; SIGTERM closes it cleanly (committing).
 */
public final class KopWordCount {
    public static void main(String[] args) throws InterruptedException {
        Properties props = new Properties();
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, args[1]);
        props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, args.length > 7 ? args[7] : StreamsConfig.AT_LEAST_ONCE);
        props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 1000);
        props.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
        props.put(StreamsConfig.STATE_DIR_CONFIG, args[6]);
        props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 1);
        props.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
        props.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
        props.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
        // Streams does not leave its group on close: a restarted instance waits for the old member's
        // session to expire (45 s by default) before it is assigned anything.
        props.put(StreamsConfig.consumerPrefix(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG), 10000);
        // Purge the repartition topics (DeleteRecords) every second rather than every 30 s.
        props.put(StreamsConfig.REPARTITION_PURGE_INTERVAL_MS_CONFIG, 1000);

        StreamsBuilder builder = new StreamsBuilder();
        KStream<String, String> lines = builder.stream(args[2]);
        KStream<String, String> words = lines
                .flatMapValues(line -> Arrays.asList(line.toLowerCase(Locale.ROOT).split("\\W+")))
                .filter((key, word) -> !word.isEmpty())
                .selectKey((key, word) -> word);
        words.groupByKey()
                .count(Materialized.as("word-counts"))
                .toStream()
                .to(args[4], Produced.with(Serdes.String(), Serdes.Long()));
        KTable<String, String> categories = builder.table(args[3], Materialized.as("categories"));
        words.join(categories, (word, category) -> category + ":" + word).to(args[5]);

        KafkaStreams streams = new KafkaStreams(builder.build(), props);
        CountDownLatch closed = new CountDownLatch(1);
        streams.setStateListener((now, before) -> {
            System.out.println("STATE " + now);
            System.out.flush();
        });
        streams.setUncaughtExceptionHandler(exception -> {
            exception.printStackTrace();
            return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            streams.close(Duration.ofSeconds(60));
            closed.countDown();
        }));
        streams.start();
        closed.await();
    }
}
