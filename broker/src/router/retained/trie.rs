//! [`TopicTrie`]: retained messages arranged by topic level, so a filter
//! costs the nodes it visits rather than every retained message.
//!
//! Each node stands for a topic prefix; its children are keyed by the text
//! of the next level, in sorted order, and it holds the retained message of
//! the topic that ends there, if any. A filter walks the trie the way
//! mosquitto's retain tree is walked: a literal level follows one child, `+`
//! every child, `#` the whole subtree (and the node itself, since `a/#`
//! matches `a` [MQTT-4.7.1-2]). A wildcard in the first level skips the
//! root's children that start with `$` [MQTT-4.7.2-1].
//!
//! Walks visit nodes in one total order, the topics' levels compared one by
//! one (a topic before the longer topics it is a prefix of), so a walk can
//! stop after any node and resume later *after* that node's topic: the
//! resume point is a topic text, not a pointer into the trie, and stays
//! meaningful whatever is inserted or removed in between.
//!
//! Topics may have up to 32,768 levels, so nothing here recurses along a
//! path: walks keep their own stacks, and dropping a node dismantles its
//! subtree in a loop.

use super::levels::{Levels, Range};

use mqtt_codec::Message;
use mqtt_codec::topic::{TopicFilter, TopicName};

/// One topic prefix: the next levels in sorted order, and the retained
/// message of the topic ending here.
#[derive(Debug, Default)]
struct Node {
    children: Levels<Node>,
    /// Boxed: most nodes are levels on the way to a topic and hold none,
    /// and an inline message would make each of them 64 bytes larger.
    message: Option<Box<Message>>,
}

impl Drop for Node {
    /// Dismantles the subtree in a loop: the derived, recursive drop would
    /// overflow the stack on a chain of thousands of levels.
    fn drop(&mut self) {
        if self.children.is_empty() {
            return;
        }
        let mut pending: Vec<Node> = self.children.take_all().collect();
        while let Some(mut node) = pending.pop() {
            pending.extend(node.children.take_all());
            // `node` drops here without children, so its own drop returns at once.
        }
    }
}

/// Retained messages by topic, as a trie of levels.
#[derive(Debug, Default)]
pub struct TopicTrie {
    root: Node,
    /// How many topics hold a message.
    len: usize,
}

/// How a [`TopicTrie::walk`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Walked {
    /// Every matching topic after the resume point was visited.
    Done,
    /// Stopped after the node of this topic (budget spent, or the visitor
    /// wanted no more): pass it as `after` to go on from there.
    Paused(Box<str>),
}

/// What the children of a visited node must match.
#[derive(Debug, Clone, Copy)]
enum Want {
    /// The filter's level at this index (the filter's length: the filter
    /// ended at the parent, and children match nothing).
    Level(usize),
    /// Anything: below a `#`.
    All,
}

/// A visited node whose children are being walked.
struct Frame<'a, 'r> {
    children: Range<'a, Node>,
    /// What each child must match.
    want: Want,
    /// While the node lies on the path of the resume topic: the resume
    /// topic's level at the children's depth. Children before it were
    /// visited by an earlier walk; the child equal to it is on the path too.
    bound: Option<&'r str>,
    /// At the root under a leading wildcard: `$` topics are not matched.
    skip_dollar: bool,
}

impl TopicTrie {
    /// How many topics hold a message.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Stores `message` as the retained message of its topic, replacing any.
    pub fn insert(&mut self, message: Message) {
        let mut node = &mut self.root;
        for level in message.topic.levels() {
            node = node.children.get_or_insert_with(level, Node::default);
        }
        if node.message.replace(Box::new(message)).is_none() {
            self.len += 1;
        }
    }

    /// The retained message of `topic`.
    pub fn get(&self, topic: &TopicName) -> Option<&Message> {
        let mut node = &self.root;
        for level in topic.levels() {
            node = node.children.get(level)?;
        }
        node.message.as_deref()
    }

    /// The retained message of `topic`, to be replaced in place.
    pub fn get_mut(&mut self, topic: &TopicName) -> Option<&mut Message> {
        let mut node = &mut self.root;
        for level in topic.levels() {
            node = node.children.get_mut(level)?;
        }
        node.message.as_deref_mut()
    }

    /// Removes the retained message of `topic`, and with it the nodes that
    /// then lead to no message, so memory follows what is retained now.
    pub fn remove(&mut self, topic: &TopicName) -> Option<Message> {
        let levels: Vec<&str> = topic.levels().collect();
        // The deepest node on the path that must stay (the root, a node
        // with a message of its own or with other children): below it, the
        // chain leads only to `topic`.
        let mut keep = 0;
        let mut node = &self.root;
        for (depth, level) in levels.iter().enumerate() {
            if depth == 0 || node.message.is_some() || node.children.len() > 1 {
                keep = depth;
            }
            node = node.children.get(level)?;
        }
        node.message.as_ref()?;
        let prune = node.children.is_empty();
        let mut node = &mut self.root;
        for level in &levels {
            node = node.children.get_mut(level)?;
        }
        let removed = node.message.take().map(|m| *m);
        if prune {
            let mut node = &mut self.root;
            for level in &levels[..keep] {
                node = node.children.get_mut(level)?;
            }
            node.children.remove(levels[keep]);
        }
        self.len -= 1;
        removed
    }

    /// Every retained message, in walk order.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            stack: vec![self.root.children.from(None)],
        }
    }

    /// Calls `visit` with each retained message whose topic `filter`
    /// matches and comes after `after` in walk order (all of them without
    /// `after`), in walk order, until `visit` returns false or `budget`
    /// nodes were visited (each node counts one and lowers `budget`; the
    /// nodes leading back to `after` are not counted, so a walk with any
    /// budget gets at least one node further).
    pub fn walk(
        &self,
        filter: &TopicFilter,
        after: Option<&str>,
        budget: &mut usize,
        mut visit: impl FnMut(&Message) -> bool,
    ) -> Walked {
        let wanted: Vec<&str> = filter.levels().collect();
        let resume: Vec<&str> = after.map(|a| a.split('/').collect()).unwrap_or_default();
        // The keys from the root down to the node being visited: one per
        // frame on the stack but the root's, then the visited node's own,
        // so joined they are the resume point of a walk stopping there.
        let mut path: Vec<&str> = Vec::new();
        let mut stack: Vec<Frame<'_, '_>> = Vec::new();
        let (_, root_frame) = visit_node(
            &self.root,
            Want::Level(0),
            &wanted,
            after.is_some(),
            &resume,
            0,
        );
        stack.extend(root_frame);
        while let Some(top) = stack.last_mut() {
            let Some((key, child)) = top.children.next() else {
                stack.pop();
                if !stack.is_empty() {
                    path.pop();
                }
                continue;
            };
            if top.skip_dollar && key.starts_with('$') {
                continue;
            }
            let on_path = match top.bound {
                Some(bound) if key < bound => continue,
                Some(bound) => key == bound,
                None => false,
            };
            let want = top.want;
            path.push(key);
            // Nodes on the resume path were counted by the walk that
            // visited them; finding them again is a seek of at most one
            // lookup per level. Counting them again could keep a walk down
            // a long chain from ever getting further.
            if !on_path {
                *budget = budget.saturating_sub(1);
            }
            let (emit, frame) = visit_node(child, want, &wanted, on_path, &resume, path.len());
            let go_on = match emit {
                Some(message) => visit(message),
                None => true,
            };
            if !go_on || (!on_path && *budget == 0) {
                return Walked::Paused(path.join("/").into());
            }
            match frame {
                Some(frame) => stack.push(frame),
                None => {
                    path.pop();
                }
            }
        }
        Walked::Done
    }

    /// How many nodes the trie holds besides the root.
    #[cfg(test)]
    fn node_count(&self) -> usize {
        let mut count = 0;
        let mut stack = vec![&self.root];
        while let Some(node) = stack.pop() {
            count += node.children.len();
            stack.extend(node.children.from(None).map(|(_, n)| n));
        }
        count
    }
}

/// What visiting `node` (at `depth`, reached by a walk wanting `want`)
/// gives: its message if the filter matches its topic, and the frame to
/// walk its children if any of them can match. `on_path`: the node lies on
/// the path of the resume topic `resume`, so its own message was seen
/// before and only its children after the resume point remain.
fn visit_node<'a, 'r>(
    node: &'a Node,
    want: Want,
    wanted: &[&str],
    on_path: bool,
    resume: &[&'r str],
    depth: usize,
) -> (Option<&'a Message>, Option<Frame<'a, 'r>>) {
    let message = node.message.as_deref().filter(|_| !on_path);
    // A leading wildcard does not match `$` topics [MQTT-4.7.2-1].
    let skip_dollar = depth == 0;
    let (emit, children, child_want, skip_dollar) = match want {
        Want::All => (message, None, Want::All, false),
        Want::Level(i) => match wanted.get(i) {
            None => (message, None, want, false),
            Some(&"#") => (message, None, Want::All, skip_dollar),
            Some(&"+") => (None, None, Want::Level(i + 1), skip_dollar),
            Some(&literal) => (None, Some(literal), Want::Level(i + 1), false),
        },
    };
    if matches!(want, Want::Level(i) if i == wanted.len()) || node.children.is_empty() {
        return (emit, None);
    }
    let bound = if on_path {
        resume.get(depth).copied()
    } else {
        None
    };
    let range = match children {
        Some(literal) => node.children.only(literal),
        None => node.children.from(bound),
    };
    let frame = Frame {
        children: range,
        want: child_want,
        bound,
        skip_dollar,
    };
    (emit, Some(frame))
}

/// Every retained message of a [`TopicTrie`], walked without recursion.
pub struct Iter<'a> {
    stack: Vec<Range<'a, Node>>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a Message;

    fn next(&mut self) -> Option<&'a Message> {
        loop {
            let top = self.stack.last_mut()?;
            match top.next() {
                Some((_, node)) => {
                    if !node.children.is_empty() {
                        self.stack.push(node.children.from(None));
                    }
                    if let Some(m) = node.message.as_deref() {
                        return Some(m);
                    }
                }
                None => {
                    self.stack.pop();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use mqtt_codec::QoS;

    fn trie(topics: &[&str]) -> TopicTrie {
        let mut t = TopicTrie::default();
        for topic in topics {
            t.insert(Message {
                topic: TopicName::new(topic).expect("valid"),
                payload: Bytes::from_static(b"m"),
                qos: QoS::AtMostOnce,
                retain: true,
            });
        }
        t
    }

    /// The topics `filter` matches after `after`, with a budget of nodes
    /// large enough to finish.
    fn matching(t: &TopicTrie, filter: &str, after: Option<&str>) -> Vec<String> {
        let filter = TopicFilter::new(filter).expect("valid");
        let mut got = Vec::new();
        let mut budget = usize::MAX;
        let walked = t.walk(&filter, after, &mut budget, |m| {
            got.push(m.topic.to_string());
            true
        });
        assert_eq!(walked, Walked::Done);
        got
    }

    const TOPICS: &[&str] = &[
        "a", "a/b", "a/b/c", "a/c", "a//x", "b/b", "$SYS/up", "$x", "/lead", "a/b/c/d",
    ];

    #[test]
    fn literal_plus_and_hash_match_as_the_naive_matcher_does() {
        let t = trie(TOPICS);
        for filter in [
            "#",
            "+",
            "a",
            "a/#",
            "a/+",
            "a/+/c",
            "+/b",
            "+/+/#",
            "/+",
            "+/#",
            "a//+",
            "$SYS/#",
            "$SYS/+",
            "+/up",
            "$x",
            "a/b/c/d/#",
            "nothing/#",
            "a/b/+/+",
        ] {
            let f = TopicFilter::new(filter).expect("valid");
            let mut naive: Vec<&str> = TOPICS
                .iter()
                .copied()
                .filter(|topic| {
                    mqtt_codec::topic::matches(&f, &TopicName::new(topic).expect("valid"))
                })
                .collect();
            let got = matching(&t, filter, None);
            // The walk's order: levels compared one by one.
            naive.sort_by(|x, y| x.split('/').cmp(y.split('/')));
            assert_eq!(got, naive, "filter {filter}");
        }
    }

    #[test]
    fn leading_wildcards_skip_dollar_topics() {
        let t = trie(&["$SYS/a", "$own", "x/$y"]);
        assert_eq!(matching(&t, "#", None), vec!["x/$y"]);
        assert_eq!(matching(&t, "+/a", None), Vec::<String>::new());
        assert_eq!(matching(&t, "+", None), Vec::<String>::new());
        assert_eq!(matching(&t, "$SYS/+", None), vec!["$SYS/a"]);
        assert_eq!(matching(&t, "x/+", None), vec!["x/$y"]);
    }

    #[test]
    fn hash_matches_its_parent_level() {
        let t = trie(&["sport", "sport/tennis", "sports"]);
        assert_eq!(matching(&t, "sport/#", None), vec!["sport", "sport/tennis"]);
    }

    #[test]
    fn removal_prunes_the_nodes_only_it_needed() {
        let mut t = trie(&["a/b/c/d", "a/x"]);
        assert_eq!(t.node_count(), 5);
        let topic = TopicName::new("a/b/c/d").expect("valid");
        assert!(t.remove(&topic).is_some());
        assert_eq!(t.node_count(), 2, "a and a/x stay");
        assert!(t.remove(&topic).is_none());
        // A node with a message of its own stays, its children go.
        let mut t = trie(&["a/b", "a/b/c/d"]);
        t.remove(&TopicName::new("a/b/c/d").expect("valid"));
        assert_eq!(t.node_count(), 2);
        // A node with children keeps them when its message goes.
        t.remove(&TopicName::new("a/b").expect("valid"));
        assert_eq!(t.node_count(), 0, "nothing left below the root");
        assert_eq!(t.len(), 0);
        let mut t = trie(&["p/q", "p/q/r"]);
        t.remove(&TopicName::new("p/q").expect("valid"));
        assert_eq!((t.node_count(), t.len()), (3, 1));
        assert_eq!(matching(&t, "#", None), vec!["p/q/r"]);
    }

    #[test]
    fn a_walk_resumes_after_any_topic_in_order() {
        let t = trie(TOPICS);
        for filter in ["#", "a/#", "+/+", "+/b", "a/+/c"] {
            let all = matching(&t, filter, None);
            for (i, topic) in all.iter().enumerate() {
                assert_eq!(
                    matching(&t, filter, Some(topic)),
                    all[i + 1..].to_vec(),
                    "filter {filter} after {topic}"
                );
            }
        }
        // The resume topic may be gone, or never have matched.
        let after_gone: Vec<String> = matching(&t, "#", None)
            .into_iter()
            .filter(|x| x.split('/').cmp("a/b/zz".split('/')).is_gt())
            .collect();
        assert_eq!(matching(&t, "#", Some("a/b/zz")), after_gone);
        assert!(!after_gone.is_empty());
    }

    #[test]
    fn a_walk_pauses_on_budget_and_on_request_and_misses_nothing() {
        let topics: Vec<String> = (0..50).map(|i| format!("t/{}/{}", i % 7, i)).collect();
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        let t = trie(&names);
        let filter = TopicFilter::new("t/+/#").expect("valid");
        let expected = matching(&t, "t/+/#", None);
        assert_eq!(expected.len(), 50);
        for budget_per_step in [1, 2, 5] {
            let mut got = Vec::new();
            let mut after: Option<Box<str>> = None;
            loop {
                let mut budget = budget_per_step;
                let walked = t.walk(&filter, after.as_deref(), &mut budget, |m| {
                    got.push(m.topic.to_string());
                    // At most three per step.
                    got.len() % 3 != 0
                });
                match walked {
                    Walked::Done => break,
                    Walked::Paused(at) => after = Some(at),
                }
            }
            assert_eq!(got, expected, "budget {budget_per_step}");
        }
    }

    #[test]
    fn a_topic_replaced_or_removed_between_steps_is_seen_as_it_is_now() {
        let mut t = trie(&["k/1", "k/2", "k/3"]);
        let filter = TopicFilter::new("k/+").expect("valid");
        let mut budget = 2;
        let mut got = Vec::new();
        let Walked::Paused(after) = t.walk(&filter, None, &mut budget, |m| {
            got.push(m.topic.to_string());
            true
        }) else {
            panic!("the budget stops the walk");
        };
        assert_eq!(got, vec!["k/1"]);
        t.remove(&TopicName::new("k/2").expect("valid"));
        t.insert(Message {
            topic: TopicName::new("k/3").expect("valid"),
            payload: Bytes::from_static(b"new"),
            qos: QoS::AtMostOnce,
            retain: true,
        });
        let mut rest = Vec::new();
        let mut budget = usize::MAX;
        t.walk(&filter, Some(&after), &mut budget, |m| {
            rest.push(m.payload.clone());
            true
        });
        assert_eq!(rest, vec![Bytes::from_static(b"new")]);
    }

    #[test]
    fn deep_topics_walk_and_drop_without_recursion() {
        let deep = vec!["x"; 30_000].join("/");
        let mut t = trie(&[&deep]);
        assert_eq!(matching(&t, "#", None).len(), 1);
        assert_eq!(t.iter().count(), 1);
        t.remove(&TopicName::new(&deep).expect("valid"));
        assert_eq!(t.node_count(), 0);
        drop(trie(&[&deep]));
    }
}
