"""The commands of Pulsar's binary protocol that kop speaks, declared from the protocol's facts
(PulsarApi.proto: names, field numbers, types). Only what kop sends or reads is declared; see
proto.py for why a field table instead of generated classes.
"""

from __future__ import annotations

from .proto import BOOL, BYTES, ENUM, I32, I64, STRING, U32, U64, Message

REP = "repeated"

KeyValue = Message("KeyValue", {1: ("key", STRING), 2: ("value", STRING)})
# ledgerId and entryId are uint64 in the .proto, but Pulsar writes Java longs there: -1 (no entry,
# "earliest") arrives as 2**64 - 1. Read as signed, so -1 is -1.
MessageIdData = Message("MessageIdData", {
    1: ("ledgerId", I64), 2: ("entryId", I64), 3: ("partition", I32), 4: ("batch_index", I32),
    5: ("ack_set", I64, REP), 6: ("batch_size", I32)})
FeatureFlags = Message("FeatureFlags", {
    1: ("supports_auth_refresh", BOOL), 2: ("supports_broker_entry_metadata", BOOL),
    3: ("supports_partial_producer", BOOL)})

# CompressionType
NONE, LZ4, ZLIB, ZSTD, SNAPPY = 0, 1, 2, 3, 4

MessageMetadata = Message("MessageMetadata", {
    1: ("producer_name", STRING), 2: ("sequence_id", U64), 3: ("publish_time", U64),
    4: ("properties", KeyValue, REP), 6: ("partition_key", STRING), 8: ("compression", ENUM),
    9: ("uncompressed_size", U32), 11: ("num_messages_in_batch", I32), 12: ("event_time", U64),
    17: ("partition_key_b64_encoded", BOOL), 18: ("ordering_key", BYTES), 20: ("marker_type", I32),
    22: ("txnid_least_bits", U64), 23: ("txnid_most_bits", U64), 24: ("highest_sequence_id", U64),
    25: ("null_value", BOOL), 26: ("uuid", STRING), 27: ("num_chunks_from_msg", I32),
    30: ("null_partition_key", BOOL), 31: ("compacted_batch_indexes", I32, REP)})

SingleMessageMetadata = Message("SingleMessageMetadata", {
    1: ("properties", KeyValue, REP), 2: ("partition_key", STRING), 3: ("payload_size", I32),
    4: ("compacted_out", BOOL), 5: ("event_time", U64), 6: ("partition_key_b64_encoded", BOOL),
    7: ("ordering_key", BYTES), 8: ("sequence_id", U64), 9: ("null_value", BOOL),
    10: ("null_partition_key", BOOL)})

BrokerEntryMetadata = Message("BrokerEntryMetadata", {1: ("broker_timestamp", U64), 2: ("index", U64)})

CommandConnect = Message("CommandConnect", {
    1: ("client_version", STRING), 3: ("auth_data", BYTES), 4: ("protocol_version", I32),
    5: ("auth_method_name", STRING), 6: ("proxy_to_broker_url", STRING), 10: ("feature_flags", FeatureFlags)})
CommandConnected = Message("CommandConnected", {
    1: ("server_version", STRING), 2: ("protocol_version", I32), 3: ("max_message_size", I32),
    4: ("feature_flags", FeatureFlags)})
AuthData = Message("AuthData", {1: ("auth_method_name", STRING), 2: ("auth_data", BYTES)})
CommandAuthChallenge = Message("CommandAuthChallenge", {
    1: ("server_version", STRING), 2: ("challenge", AuthData), 3: ("protocol_version", I32)})
CommandAuthResponse = Message("CommandAuthResponse", {
    1: ("client_version", STRING), 2: ("response", AuthData), 3: ("protocol_version", I32)})

CommandLookupTopic = Message("CommandLookupTopic", {
    1: ("topic", STRING), 2: ("request_id", U64), 3: ("authoritative", BOOL)})
CommandLookupTopicResponse = Message("CommandLookupTopicResponse", {
    1: ("brokerServiceUrl", STRING), 2: ("brokerServiceUrlTls", STRING), 3: ("response", ENUM),
    4: ("request_id", U64), 5: ("authoritative", BOOL), 6: ("error", ENUM), 7: ("message", STRING),
    8: ("proxy_through_service_url", BOOL)})
LOOKUP_REDIRECT, LOOKUP_CONNECT, LOOKUP_FAILED = 0, 1, 2

CommandPartitionedTopicMetadata = Message("CommandPartitionedTopicMetadata", {
    1: ("topic", STRING), 2: ("request_id", U64), 6: ("metadata_auto_creation_enabled", BOOL)})
CommandPartitionedTopicMetadataResponse = Message("CommandPartitionedTopicMetadataResponse", {
    1: ("partitions", U32), 2: ("request_id", U64), 3: ("response", ENUM), 4: ("error", ENUM),
    5: ("message", STRING)})

# ProducerAccessMode
SHARED, EXCLUSIVE, WAIT_FOR_EXCLUSIVE, EXCLUSIVE_WITH_FENCING = 0, 1, 2, 3

CommandProducer = Message("CommandProducer", {
    1: ("topic", STRING), 2: ("producer_id", U64), 3: ("request_id", U64), 4: ("producer_name", STRING),
    6: ("metadata", KeyValue, REP), 8: ("epoch", U64), 9: ("user_provided_producer_name", BOOL),
    10: ("producer_access_mode", ENUM), 11: ("topic_epoch", U64)})
CommandProducerSuccess = Message("CommandProducerSuccess", {
    1: ("request_id", U64), 2: ("producer_name", STRING), 3: ("last_sequence_id", I64),
    4: ("schema_version", BYTES), 5: ("topic_epoch", U64), 6: ("producer_ready", BOOL)})
CommandSend = Message("CommandSend", {
    1: ("producer_id", U64), 2: ("sequence_id", U64), 3: ("num_messages", I32),
    6: ("highest_sequence_id", U64), 8: ("marker", BOOL)})
CommandSendReceipt = Message("CommandSendReceipt", {
    1: ("producer_id", U64), 2: ("sequence_id", U64), 3: ("message_id", MessageIdData),
    4: ("highest_sequence_id", U64)})
CommandSendError = Message("CommandSendError", {
    1: ("producer_id", U64), 2: ("sequence_id", U64), 3: ("error", ENUM), 4: ("message", STRING)})
CommandCloseProducer = Message("CommandCloseProducer", {
    1: ("producer_id", U64), 2: ("request_id", U64), 3: ("assignedBrokerServiceUrl", STRING),
    4: ("assignedBrokerServiceUrlTls", STRING)})

# CommandSubscribe.SubType and InitialPosition
SUB_EXCLUSIVE, SUB_SHARED, SUB_FAILOVER = 0, 1, 2
POSITION_LATEST, POSITION_EARLIEST = 0, 1

CommandSubscribe = Message("CommandSubscribe", {
    1: ("topic", STRING), 2: ("subscription", STRING), 3: ("subType", ENUM), 4: ("consumer_id", U64),
    5: ("request_id", U64), 6: ("consumer_name", STRING), 8: ("durable", BOOL),
    9: ("start_message_id", MessageIdData), 11: ("read_compacted", BOOL), 13: ("initialPosition", ENUM),
    15: ("force_topic_creation", BOOL), 16: ("start_message_rollback_duration_sec", U64),
    19: ("consumer_epoch", U64)})
CommandMessage = Message("CommandMessage", {
    1: ("consumer_id", U64), 2: ("message_id", MessageIdData), 3: ("redelivery_count", U32),
    4: ("ack_set", I64, REP), 5: ("consumer_epoch", U64)})
CommandFlow = Message("CommandFlow", {1: ("consumer_id", U64), 2: ("messagePermits", U32)})
CommandAck = Message("CommandAck", {
    1: ("consumer_id", U64), 2: ("ack_type", ENUM), 3: ("message_id", MessageIdData, REP),
    8: ("request_id", U64)})
ACK_INDIVIDUAL, ACK_CUMULATIVE = 0, 1
CommandSeek = Message("CommandSeek", {
    1: ("consumer_id", U64), 2: ("request_id", U64), 3: ("message_id", MessageIdData),
    4: ("message_publish_time", U64)})
CommandCloseConsumer = Message("CommandCloseConsumer", {
    1: ("consumer_id", U64), 2: ("request_id", U64), 3: ("assignedBrokerServiceUrl", STRING),
    4: ("assignedBrokerServiceUrlTls", STRING)})
CommandReachedEndOfTopic = Message("CommandReachedEndOfTopic", {1: ("consumer_id", U64)})
CommandUnsubscribe = Message("CommandUnsubscribe", {1: ("consumer_id", U64), 2: ("request_id", U64)})
CommandGetLastMessageId = Message("CommandGetLastMessageId", {1: ("consumer_id", U64), 2: ("request_id", U64)})
CommandGetLastMessageIdResponse = Message("CommandGetLastMessageIdResponse", {
    1: ("last_message_id", MessageIdData), 2: ("request_id", U64),
    3: ("consumer_mark_delete_position", MessageIdData)})
CommandActiveConsumerChange = Message("CommandActiveConsumerChange", {1: ("consumer_id", U64), 2: ("is_active", BOOL)})
CommandTopicMigrated = Message("CommandTopicMigrated", {
    1: ("resource_id", U64), 2: ("resource_type", ENUM), 3: ("brokerServiceUrl", STRING),
    4: ("brokerServiceUrlTls", STRING)})

CommandSuccess = Message("CommandSuccess", {1: ("request_id", U64)})
CommandError = Message("CommandError", {1: ("request_id", U64), 2: ("error", ENUM), 3: ("message", STRING)})
CommandPing = Message("CommandPing", {})
CommandPong = Message("CommandPong", {})

# BaseCommand.Type, and the BaseCommand field holding each (the field number equals the type).
CONNECT, CONNECTED, SUBSCRIBE, PRODUCER, SEND, SEND_RECEIPT, SEND_ERROR = 2, 3, 4, 5, 6, 7, 8
MESSAGE, ACK, FLOW, UNSUBSCRIBE, SUCCESS, ERROR = 9, 10, 11, 12, 13, 14
CLOSE_PRODUCER, CLOSE_CONSUMER, PRODUCER_SUCCESS, PING, PONG = 15, 16, 17, 18, 19
PARTITIONED_METADATA, PARTITIONED_METADATA_RESPONSE, LOOKUP, LOOKUP_RESPONSE = 21, 22, 23, 24
REACHED_END_OF_TOPIC, SEEK, GET_LAST_MESSAGE_ID, GET_LAST_MESSAGE_ID_RESPONSE = 27, 28, 29, 30
ACTIVE_CONSUMER_CHANGE, AUTH_CHALLENGE, AUTH_RESPONSE, TOPIC_MIGRATED = 31, 36, 37, 68

_BODIES = {
    CONNECT: ("connect", CommandConnect), CONNECTED: ("connected", CommandConnected),
    SUBSCRIBE: ("subscribe", CommandSubscribe), PRODUCER: ("producer", CommandProducer),
    SEND: ("send", CommandSend), SEND_RECEIPT: ("send_receipt", CommandSendReceipt),
    SEND_ERROR: ("send_error", CommandSendError), MESSAGE: ("message", CommandMessage),
    ACK: ("ack", CommandAck), FLOW: ("flow", CommandFlow), UNSUBSCRIBE: ("unsubscribe", CommandUnsubscribe),
    SUCCESS: ("success", CommandSuccess), ERROR: ("error", CommandError),
    CLOSE_PRODUCER: ("close_producer", CommandCloseProducer), CLOSE_CONSUMER: ("close_consumer", CommandCloseConsumer),
    PRODUCER_SUCCESS: ("producer_success", CommandProducerSuccess), PING: ("ping", CommandPing),
    PONG: ("pong", CommandPong),
    PARTITIONED_METADATA: ("partitionMetadata", CommandPartitionedTopicMetadata),
    PARTITIONED_METADATA_RESPONSE: ("partitionMetadataResponse", CommandPartitionedTopicMetadataResponse),
    LOOKUP: ("lookupTopic", CommandLookupTopic), LOOKUP_RESPONSE: ("lookupTopicResponse", CommandLookupTopicResponse),
    REACHED_END_OF_TOPIC: ("reachedEndOfTopic", CommandReachedEndOfTopic), SEEK: ("seek", CommandSeek),
    GET_LAST_MESSAGE_ID: ("getLastMessageId", CommandGetLastMessageId),
    GET_LAST_MESSAGE_ID_RESPONSE: ("getLastMessageIdResponse", CommandGetLastMessageIdResponse),
    ACTIVE_CONSUMER_CHANGE: ("active_consumer_change", CommandActiveConsumerChange),
    AUTH_CHALLENGE: ("authChallenge", CommandAuthChallenge), AUTH_RESPONSE: ("authResponse", CommandAuthResponse),
    TOPIC_MIGRATED: ("topicMigrated", CommandTopicMigrated),
}

BaseCommand = Message("BaseCommand", {1: ("type", ENUM), **{t: (name, body) for t, (name, body) in _BODIES.items()}})


def body_field(command_type: int) -> str:
    return _BODIES[command_type][0]


# ServerError values kop reacts to (the rest are reported by name).
SERVER_ERRORS = {
    0: "UnknownError", 1: "MetadataError", 2: "PersistenceError", 3: "AuthenticationError",
    4: "AuthorizationError", 5: "ConsumerBusy", 6: "ServiceNotReady",
    7: "ProducerBlockedQuotaExceededError", 8: "ProducerBlockedQuotaExceededException", 9: "ChecksumError",
    10: "UnsupportedVersionError", 11: "TopicNotFound", 12: "SubscriptionNotFound", 13: "ConsumerNotFound",
    14: "TooManyRequests", 15: "TopicTerminatedError", 16: "ProducerBusy", 17: "InvalidTopicName",
    18: "IncompatibleSchema", 19: "ConsumerAssignError", 20: "TransactionCoordinatorNotFound",
    21: "InvalidTxnStatus", 22: "NotAllowedError", 23: "TransactionConflict", 24: "TransactionNotFound",
    25: "ProducerFenced"}
