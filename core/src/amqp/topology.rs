//! Exchange and queue names (README, "Messaging and storage") and their idempotent declaration.
//!
//! Poison messages are counted by the workers themselves (crashes while processing *that*
//! image, kept in Redis): the broker's delivery limit also counts every return caused by a
//! worker crash or a lost connection, so it would dead-letter innocent jobs. The scan queue
//! therefore carries only a last-resort [`DELIVERY_LIMIT`]. A queue's arguments cannot change
//! once declared (a redeclare fails with `PRECONDITION_FAILED`), so the queue with the new limit
//! has a new name, `facematch.scan.v2`; the first version (`facematch.scan`, limit 5) is
//! retired by the workers: unbound from `toWorker` and drained ([`Topology::retire_legacy`]).

use lapin::{
    Channel, ExchangeKind,
    options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions},
    types::{AMQPValue, FieldTable},
};

/// Routing key of scan jobs on `toWorker`.
pub const SCAN_ROUTING_KEY: &str = "scan";

/// The broker's backstop: deliveries (returns after crashes and lost connections included)
/// before a job is dead-lettered. Far above what the workers' own poison budget
/// (`FACEMATCH_MAX_ATTEMPTS`) and any outage reach; it only bounds a job if Redis, and so the
/// workers' own count, is unavailable while a message keeps coming back.
pub const DELIVERY_LIMIT: i32 = 100;

/// The first scan queue's delivery limit, which counted crash and disconnect returns.
const LEGACY_DELIVERY_LIMIT: i32 = 5;

/// Every exchange and queue name, under an optional prefix (empty = the seed's names).
#[derive(Debug, Clone, Default)]
pub struct Topology {
    prefix: String,
}

impl Topology {
    /// Names under `prefix`; tests isolate themselves with a unique one.
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    /// The durable direct exchange jobs are published to.
    pub fn to_worker(&self) -> String {
        format!("{}toWorker", self.prefix)
    }

    /// The durable quorum queue workers consume (version 2: only a backstop delivery limit).
    pub fn scan_queue(&self) -> String {
        format!("{}facematch.scan.v2", self.prefix)
    }

    /// The first version of the scan queue (delivery limit 5); workers unbind and drain it.
    pub fn legacy_scan_queue(&self) -> String {
        format!("{}facematch.scan", self.prefix)
    }

    /// The dead-letter exchange of the scan queue.
    pub fn dead_exchange(&self) -> String {
        format!("{}facematch.dlx", self.prefix)
    }

    /// Where poison jobs end.
    pub fn dead_queue(&self) -> String {
        format!("{}facematch.dead", self.prefix)
    }

    /// The topic exchange of log lines.
    pub fn logs(&self) -> String {
        format!("{}logs", self.prefix)
    }

    /// Declares everything (idempotent, so any start order works).
    pub async fn declare(&self, channel: &Channel) -> Result<(), lapin::Error> {
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        };
        channel
            .exchange_declare(
                self.to_worker().into(),
                ExchangeKind::Direct,
                durable,
                FieldTable::default(),
            )
            .await?;
        channel
            .exchange_declare(
                self.dead_exchange().into(),
                ExchangeKind::Fanout,
                durable,
                FieldTable::default(),
            )
            .await?;
        channel
            .exchange_declare(
                self.logs().into(),
                ExchangeKind::Topic,
                durable,
                FieldTable::default(),
            )
            .await?;

        let durable_queue = QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        };
        let mut dead_args = FieldTable::default();
        dead_args.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("quorum".into()),
        );
        channel
            .queue_declare(self.dead_queue().into(), durable_queue, dead_args)
            .await?;
        channel
            .queue_bind(
                self.dead_queue().into(),
                self.dead_exchange().into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;

        self.declare_scan_queue(channel, &self.scan_queue(), DELIVERY_LIMIT)
            .await?;
        Ok(())
    }

    /// If the first version of the scan queue holds jobs (a deployment from before
    /// `facematch.scan.v2`), unbinds it from `toWorker` so new jobs go to the new queue only,
    /// and returns its name: its messages are accepted jobs, so the caller drains it too.
    ///
    /// The queue is looked for by declaring it as the first version did (a no-op where it
    /// exists), not by a passive declare: a passive declare of a missing queue makes the broker
    /// close the channel, which lapin logs as an ERROR — at every start of every new
    /// deployment's workers. Once unbound nothing can reach it, so when it then holds no job and
    /// no consumer it is deleted (quorum queues refuse a conditional delete).
    pub async fn retire_legacy(
        &self,
        connection: &lapin::Connection,
    ) -> Result<Option<String>, lapin::Error> {
        let queue = self.legacy_scan_queue();
        let channel = connection.create_channel().await?;
        let declare = || {
            channel.queue_declare(
                queue.clone().into(),
                QueueDeclareOptions {
                    durable: true,
                    ..QueueDeclareOptions::default()
                },
                self.scan_queue_arguments(LEGACY_DELIVERY_LIMIT),
            )
        };
        declare().await?;
        channel
            .queue_unbind(
                queue.clone().into(),
                self.to_worker().into(),
                SCAN_ROUTING_KEY.into(),
                FieldTable::default(),
            )
            .await?;
        let unbound = declare().await?;
        let retired = if unbound.message_count() == 0 && unbound.consumer_count() == 0 {
            channel
                .queue_delete(queue.clone().into(), QueueDeleteOptions::default())
                .await?;
            None
        } else {
            Some(queue)
        };
        let _ = channel.close(200, "legacy queue retired".into()).await;
        Ok(retired)
    }

    /// A durable quorum scan queue `name` dead-lettering to the dead exchange after
    /// `delivery_limit` deliveries, bound to `toWorker` with the scan routing key.
    async fn declare_scan_queue(
        &self,
        channel: &Channel,
        name: &str,
        delivery_limit: i32,
    ) -> Result<(), lapin::Error> {
        let durable = QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        };
        channel
            .queue_declare(
                name.into(),
                durable,
                self.scan_queue_arguments(delivery_limit),
            )
            .await?;
        channel
            .queue_bind(
                name.into(),
                self.to_worker().into(),
                SCAN_ROUTING_KEY.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok(())
    }

    /// Declares the `logs` topic exchange alone (what a process that only forwards its log
    /// lines needs).
    pub async fn declare_logs(&self, channel: &Channel) -> Result<(), lapin::Error> {
        channel
            .exchange_declare(
                self.logs().into(),
                ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    durable: true,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
    }

    /// A scan queue's arguments: quorum, dead-lettering to the dead exchange after
    /// `delivery_limit` deliveries.
    fn scan_queue_arguments(&self, delivery_limit: i32) -> FieldTable {
        let mut args = FieldTable::default();
        args.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("quorum".into()),
        );
        args.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(self.dead_exchange().into()),
        );
        args.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongInt(delivery_limit),
        );
        args
    }

    /// Declares the first version of the scan queue as old deployments did (bound, delivery
    /// limit 5): for tests of the migration.
    pub async fn declare_legacy(&self, channel: &Channel) -> Result<(), lapin::Error> {
        self.declare_scan_queue(channel, &self.legacy_scan_queue(), LEGACY_DELIVERY_LIMIT)
            .await?;
        Ok(())
    }

    /// Consumes the `logs` exchange: a fresh exclusive, auto-delete, server-named queue bound
    /// with each routing-key pattern (`#`, `*.worker.*`, …), without acks.
    pub async fn subscribe_logs(
        &self,
        channel: &Channel,
        patterns: &[&str],
    ) -> Result<lapin::Consumer, lapin::Error> {
        use lapin::options::BasicConsumeOptions;
        let queue = channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        for pattern in patterns {
            channel
                .queue_bind(
                    queue.name().clone(),
                    self.logs().into(),
                    (*pattern).into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
        }
        channel
            .basic_consume(
                queue.name().clone(),
                "".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..BasicConsumeOptions::default()
                },
                FieldTable::default(),
            )
            .await
    }

    /// Deletes everything this topology declared (test clean-up).
    pub async fn delete(&self, channel: &Channel) -> Result<(), lapin::Error> {
        use lapin::options::ExchangeDeleteOptions;
        for queue in [
            self.scan_queue(),
            self.legacy_scan_queue(),
            self.dead_queue(),
        ] {
            channel
                .queue_delete(queue.into(), QueueDeleteOptions::default())
                .await?;
        }
        for exchange in [self.to_worker(), self.dead_exchange(), self.logs()] {
            channel
                .exchange_delete(exchange.into(), ExchangeDeleteOptions::default())
                .await?;
        }
        Ok(())
    }
}
