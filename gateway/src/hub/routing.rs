//! Who takes an event: subscribers grouped by filter (identical filters share one group, so a
//! filter is evaluated once per event for all of them), and groups indexed by topic and, where
//! the filter names keys (symbols, authors, services), by key. An event looks up its topic's
//! groups that take every key plus the groups of its own key: it costs only those who may take
//! it, never a scan of every subscriber.

use std::{collections::HashMap, sync::Arc};

use streamweaver_proto::topics::Topic;

use super::queue::Mailbox;
use crate::{
    event::SharedEvent,
    filter::{Filter, routing_key},
};

/// A group's place in the index.
pub(crate) type GroupId = usize;

/// Subscribers that share one filter. Members are copied on write, so a publisher can hold a
/// snapshot while subscribers come and go.
struct Group {
    filter: Arc<Filter>,
    members: Arc<Vec<Arc<Mailbox>>>,
    /// Events of the batch being routed that the filter takes.
    matched: Vec<(SharedEvent, u32)>,
}

#[derive(Default)]
struct TopicRoutes {
    /// Groups that take every key of the topic.
    any_key: Vec<GroupId>,
    /// Groups that take only some keys, by key.
    by_key: HashMap<Box<str>, Vec<GroupId>>,
}

/// Events of one batch for the members of one group.
pub(crate) struct Delivery {
    pub(crate) members: Arc<Vec<Arc<Mailbox>>>,
    pub(crate) events: Vec<(SharedEvent, u32)>,
}

/// The routing index; see the module documentation.
#[derive(Default)]
pub(crate) struct RoutingIndex {
    groups: Vec<Option<Group>>,
    free: Vec<GroupId>,
    by_filter: HashMap<Arc<Filter>, GroupId>,
    topics: [TopicRoutes; Topic::ALL.len()],
    /// Groups touched by the batch being routed.
    touched: Vec<GroupId>,
}

impl RoutingIndex {
    /// Adds a subscriber with `filter`; returns its group and the group's shared filter.
    pub(crate) fn join(&mut self, filter: Filter, mailbox: Arc<Mailbox>) -> (GroupId, Arc<Filter>) {
        if let Some(&id) = self.by_filter.get(&filter)
            && let Some(group) = &mut self.groups[id]
        {
            Arc::make_mut(&mut group.members).push(mailbox);
            return (id, group.filter.clone());
        }
        let filter = Arc::new(filter);
        let group = Group {
            filter: filter.clone(),
            members: Arc::new(vec![mailbox]),
            matched: Vec::new(),
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.groups[id] = Some(group);
                id
            }
            None => {
                self.groups.push(Some(group));
                self.groups.len() - 1
            }
        };
        self.by_filter.insert(filter.clone(), id);
        for topic in filter.routed_topics().iter() {
            let routes = &mut self.topics[topic.index()];
            match filter.keys(topic) {
                None => routes.any_key.push(id),
                Some(keys) => {
                    for key in keys {
                        routes.by_key.entry(key.clone()).or_default().push(id);
                    }
                }
            }
        }
        (id, filter)
    }

    /// Removes a subscriber; its group goes when it was the last.
    pub(crate) fn leave(&mut self, id: GroupId, mailbox: &Arc<Mailbox>) {
        let Some(Some(group)) = self.groups.get_mut(id) else {
            return;
        };
        let members = Arc::make_mut(&mut group.members);
        if let Some(at) = members.iter().position(|m| Arc::ptr_eq(m, mailbox)) {
            members.swap_remove(at);
        }
        if !members.is_empty() {
            return;
        }
        let Some(group) = self.groups[id].take() else {
            return;
        };
        self.free.push(id);
        self.by_filter.remove(&group.filter);
        for topic in group.filter.routed_topics().iter() {
            let routes = &mut self.topics[topic.index()];
            match group.filter.keys(topic) {
                None => routes.any_key.retain(|g| *g != id),
                Some(keys) => {
                    for key in keys {
                        if let Some(groups) = routes.by_key.get_mut(key) {
                            groups.retain(|g| *g != id);
                            if groups.is_empty() {
                                routes.by_key.remove(key);
                            }
                        }
                    }
                }
            }
        }
    }

    /// Which groups take which events of `events` (in order), with a snapshot of their members.
    pub(crate) fn route(&mut self, events: &[(SharedEvent, u32)]) -> Vec<Delivery> {
        for (event, bytes) in events {
            let event_of = event.event();
            let Some(payload) = event_of.payload.as_ref() else {
                continue;
            };
            let routes = &self.topics[event.topic().index()];
            let keyed = routes.by_key.get(routing_key(payload));
            for &id in routes.any_key.iter().chain(keyed.into_iter().flatten()) {
                let Some(group) = &mut self.groups[id] else {
                    continue;
                };
                if group.filter.matches_besides_key(event_of, payload) {
                    if group.matched.is_empty() {
                        self.touched.push(id);
                    }
                    group.matched.push((event.clone(), *bytes));
                }
            }
        }
        let groups = &mut self.groups;
        self.touched
            .drain(..)
            .filter_map(|id| {
                let group = groups[id].as_mut()?;
                Some(Delivery {
                    members: group.members.clone(),
                    events: std::mem::take(&mut group.matched),
                })
            })
            .collect()
    }

    /// Every subscriber whose filter takes events of `topic`.
    pub(crate) fn members_of(&self, topic: Topic) -> Vec<Arc<Mailbox>> {
        self.groups
            .iter()
            .flatten()
            .filter(|group| group.filter.topics().contains(topic))
            .flat_map(|group| group.members.iter().cloned())
            .collect()
    }

    /// Every subscriber.
    pub(crate) fn all_members(&self) -> Vec<Arc<Mailbox>> {
        self.groups
            .iter()
            .flatten()
            .flat_map(|group| group.members.iter().cloned())
            .collect()
    }

    /// Distinct filters now.
    pub(crate) fn group_count(&self) -> usize {
        self.by_filter.len()
    }
}

#[cfg(test)]
mod tests {
    use streamweaver_proto::v1::{LogLevel, SubscribeRequest};

    use super::*;
    use crate::hub::{
        policy::Policy,
        queue::{Limits, Popped},
        testing,
    };

    fn trade(offset: i64, symbol: &str) -> (SharedEvent, u32) {
        (testing::trade(0, offset, symbol), 1)
    }

    fn log(offset: i64, level: LogLevel) -> (SharedEvent, u32) {
        (testing::log(0, offset, level), 1)
    }

    fn mailbox() -> Arc<Mailbox> {
        Arc::new(Mailbox::new(
            Policy::Gap,
            Limits {
                events: 100,
                bytes: usize::MAX,
            },
        ))
    }

    fn filter(request: SubscribeRequest) -> Filter {
        Filter::from_request(&request).expect("valid")
    }

    fn deliver(deliveries: Vec<Delivery>) {
        let mut tally = Default::default();
        for delivery in deliveries {
            for member in delivery.members.iter() {
                let mut queue = member.lock();
                for (event, bytes) in &delivery.events {
                    queue.push(event, *bytes, &mut tally);
                }
            }
        }
    }

    fn received(mailbox: &Mailbox) -> Vec<i64> {
        let mut queue = mailbox.lock();
        std::iter::from_fn(|| match queue.pop()? {
            Popped::Event(event, _) => Some(event.offset()),
            other => panic!("{other:?}"),
        })
        .collect()
    }

    #[test]
    fn events_reach_exactly_the_subscribers_whose_filters_take_them() {
        let mut index = RoutingIndex::default();
        let (everything, aapl, aapl_too, errors) = (mailbox(), mailbox(), mailbox(), mailbox());
        index.join(filter(SubscribeRequest::default()), everything.clone());
        let only_aapl = || {
            filter(SubscribeRequest {
                topics: vec!["stock_trades".into()],
                symbols: vec!["AAPL".into()],
                ..Default::default()
            })
        };
        let (group, _) = index.join(only_aapl(), aapl.clone());
        let (same_group, _) = index.join(only_aapl(), aapl_too.clone());
        assert_eq!(group, same_group, "identical filters share a group");
        index.join(
            filter(SubscribeRequest {
                topics: vec!["server_logs".into()],
                log_levels: vec![LogLevel::Error.into()],
                ..Default::default()
            }),
            errors.clone(),
        );
        assert_eq!(index.group_count(), 3);

        deliver(index.route(&[
            trade(0, "AAPL"),
            trade(1, "MSFT"),
            log(2, LogLevel::Error),
            log(3, LogLevel::Info),
            trade(4, "AAPL"),
        ]));
        assert_eq!(received(&everything), vec![0, 1, 2, 3, 4]);
        assert_eq!(received(&aapl), vec![0, 4]);
        assert_eq!(received(&aapl_too), vec![0, 4]);
        assert_eq!(received(&errors), vec![2]);
        assert_eq!(index.members_of(Topic::ServerLogs).len(), 2);

        index.leave(group, &aapl);
        index.leave(group, &aapl_too);
        assert_eq!(index.group_count(), 2);
        assert!(index.topics[Topic::StockTrades.index()].by_key.is_empty());
        deliver(index.route(&[trade(5, "AAPL")]));
        assert_eq!(received(&everything), vec![5]);
        assert_eq!(received(&aapl), Vec::<i64>::new());
        assert_eq!(index.all_members().len(), 2);
    }
}
