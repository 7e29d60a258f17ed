//! The social producer: posts by a cast of authors, with hashtags drawn from trending topics and
//! likes that follow a long tail, keyed by author so each author's posts stay in order.

use std::time::SystemTime;

use prost::Message;
use rand::{Rng, rngs::StdRng, seq::IndexedRandom};
use rand_distr::{Distribution, Zipf};
use streamweaver_common::producer::{EventSource, Record};
use streamweaver_proto::{time::timestamp, topics, v1::SocialPost};

const AUTHORS: &[&str] = &[
    "ada_l",
    "grace_h",
    "linus_t",
    "margaret_h",
    "ken_t",
    "barbara_l",
    "dennis_r",
    "radia_p",
    "tim_bl",
    "frances_a",
    "guido_vr",
    "hedy_l",
    "alan_t",
    "katherine_j",
    "donald_k",
    "edsger_d",
];

/// Post templates: `{}` is filled with a subject.
const TEMPLATES: &[&str] = &[
    "Just shipped a new release of {}",
    "Hot take: {} is underrated",
    "Anyone else debugging {} on a Sunday?",
    "Reading the {} docs again and learning something new",
    "Benchmarked {} today, numbers look great",
    "Thread on what we learned migrating to {}",
    "Can't believe how fast {} has become",
    "Our team is hiring people who love {}",
];

const SUBJECTS: &[(&str, &str)] = &[
    ("Rust", "rustlang"),
    ("Kafka", "kafka"),
    ("gRPC", "grpc"),
    ("React", "reactjs"),
    ("Kubernetes", "k8s"),
    ("Postgres", "postgres"),
    ("WebAssembly", "wasm"),
    ("the new GPU", "ai"),
];

const EXTRA_TAGS: &[&str] = &[
    "devlife",
    "opensource",
    "streaming",
    "realtime",
    "tech",
    "coding",
];

/// Makes social posts; a few authors post much more than the rest (Zipf).
pub struct SocialPosts {
    author_rank: Zipf<f64>,
    likes: Zipf<f64>,
    sequence: u64,
}

impl Default for SocialPosts {
    fn default() -> Self {
        Self {
            // Constants valid for Zipf: n >= 1, s > 0.
            author_rank: Zipf::new(AUTHORS.len() as f64, 1.1).unwrap_or_else(|_| unreachable!()),
            likes: Zipf::new(10_000.0, 1.3).unwrap_or_else(|_| unreachable!()),
            sequence: 0,
        }
    }
}

impl SocialPosts {
    /// The next post as a typed message.
    pub fn next_post(&mut self, rng: &mut StdRng, now: SystemTime) -> SocialPost {
        let rank = self.author_rank.sample(rng) as usize;
        let author = AUTHORS[rank.clamp(1, AUTHORS.len()) - 1];
        let template = TEMPLATES.choose(rng).copied().unwrap_or("{}");
        let &(subject, tag) = SUBJECTS.choose(rng).unwrap_or(&("Rust", "rustlang"));
        let mut hashtags = vec![tag.to_owned()];
        if rng.random_bool(0.6)
            && let Some(extra) = EXTRA_TAGS.choose(rng)
        {
            hashtags.push((*extra).to_owned());
        }
        let tags: Vec<String> = hashtags.iter().map(|t| format!("#{t}")).collect();
        let likes = self.likes.sample(rng) as u32 - 1;
        self.sequence += 1;
        SocialPost {
            post_id: format!(
                "P{:012x}{:06}",
                rng.random::<u64>() >> 16,
                self.sequence % 1_000_000
            ),
            author: author.to_owned(),
            text: format!("{} {}", template.replace("{}", subject), tags.join(" ")),
            hashtags,
            likes,
            reposts: likes / rng.random_range(3..12),
            timestamp: Some(timestamp(now)),
        }
    }
}

impl EventSource for SocialPosts {
    fn topic(&self) -> &'static str {
        topics::SOCIAL_FEED
    }

    fn next_record(&mut self, rng: &mut StdRng, now: SystemTime) -> Record {
        let post = self.next_post(rng, now);
        Record {
            key: post.author.clone(),
            value: post.encode_to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn posts_carry_their_hashtags_in_the_text() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut source = SocialPosts::default();
        for _ in 0..500 {
            let post = source.next_post(&mut rng, SystemTime::now());
            assert!(AUTHORS.contains(&post.author.as_str()));
            assert!(!post.hashtags.is_empty());
            for tag in &post.hashtags {
                assert!(post.text.contains(&format!("#{tag}")), "{}", post.text);
            }
            assert!(post.reposts <= post.likes);
        }
    }

    #[test]
    fn a_few_authors_post_most() {
        let mut rng = StdRng::seed_from_u64(5);
        let mut source = SocialPosts::default();
        let top = (0..2_000)
            .filter(|_| source.next_post(&mut rng, SystemTime::now()).author == AUTHORS[0])
            .count();
        // Uniform would give 1/16 (125); Zipf(1.1) gives the top author far more.
        assert!(top > 300, "top author posted {top} of 2000");
    }
}
