//! Filter expressions against real events: the README's examples, each payload, enums, absent
//! payloads and fields, refusals with their positions, the limits, the cache.

use std::sync::Arc;

use prost::Message as _;
use streamweaver_proto::v1::{
    Event, LogEntry, LogLevel, SocialPost, StockTrade, TradeSide, event::Payload,
};

use super::*;

fn trade(symbol: &str, price: f64) -> Event {
    Event {
        topic: "stock_trades".into(),
        key: symbol.into(),
        partition: 1,
        offset: 7,
        payload: Some(Payload::StockTrade(StockTrade {
            trade_id: "t-1".into(),
            symbol: symbol.into(),
            price,
            quantity: 100,
            side: TradeSide::Sell.into(),
            exchange: "NASDAQ".into(),
            timestamp: None,
        })),
        ..Default::default()
    }
}

fn log(service: &str, level: LogLevel, status: u32) -> Event {
    Event {
        topic: "server_logs".into(),
        key: service.into(),
        partition: 0,
        offset: 42,
        payload: Some(Payload::LogEntry(LogEntry {
            service: service.into(),
            level: level.into(),
            message: "upstream timeout after 3 retries".into(),
            status_code: status,
            latency_ms: 812.5,
            timestamp: Some(pbjson_types::Timestamp {
                seconds: 1_767_225_600, // 2026-01-01T00:00:00Z
                nanos: 0,
            }),
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn post(author: &str, tags: &[&str], likes: u32) -> Event {
    Event {
        topic: "social_feed".into(),
        key: author.into(),
        partition: 2,
        offset: 3,
        payload: Some(Payload::SocialPost(SocialPost {
            author: author.into(),
            text: "hello".into(),
            hashtags: tags.iter().map(|t| (*t).to_owned()).collect(),
            likes,
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn compile(source: &str) -> Arc<Expression> {
    Expressions::default()
        .get_blocking(source)
        .unwrap_or_else(|e| panic!("{source}: {e}"))
        .expect("not empty")
}

fn refuse(source: &str) -> ExprError {
    Expressions::default()
        .get_blocking(source)
        .map(|e| e.map(|e| e.source().to_owned()))
        .expect_err(source)
}

fn location(error: &ExprError) -> (usize, usize) {
    match error {
        ExprError::Syntax { at, .. }
        | ExprError::Invalid { at, .. }
        | ExprError::TooComplex { at, .. } => (at.line, at.column),
        other => panic!("no location in {other:?}"),
    }
}

#[test]
fn the_readme_examples_match_what_they_say() {
    let big_tech =
        compile(r#"stock_trade.price > 500.0 && stock_trade.symbol in ["NVDA", "META"]"#);
    assert!(big_tech.matches(&trade("NVDA", 612.0)));
    assert!(big_tech.matches(&trade("META", 501.0)));
    assert!(!big_tech.matches(&trade("NVDA", 480.0)));
    assert!(!big_tech.matches(&trade("AAPL", 612.0)));
    assert!(!big_tech.matches(&log("payments", LogLevel::Error, 500)));
    assert!(!big_tech.matches(&post("ada", &[], 1)));
    // It can only ever match trades, so the hub need not offer it anything else.
    assert!(big_tech.may_match(Topic::StockTrades));
    assert!(!big_tech.may_match(Topic::ServerLogs));
    assert!(!big_tech.may_match(Topic::SocialFeed));

    let payments = compile(r#"log_entry.service.startsWith("pay")"#);
    assert!(payments.matches(&log("payments", LogLevel::Info, 200)));
    assert!(!payments.matches(&log("auth", LogLevel::Info, 200)));
    assert!(!payments.matches(&trade("PAYC", 10.0)));
}

#[test]
fn every_payload_and_the_event_fields_can_be_read() {
    let cases: [(&str, Event, bool); 12] = [
        (
            "stock_trade.quantity == 100 && stock_trade.exchange == 'NASDAQ'",
            trade("A", 1.0),
            true,
        ),
        ("stock_trade.trade_id.endsWith('-1')", trade("A", 1.0), true),
        (
            r#""rust" in social_post.hashtags && social_post.likes > 10"#,
            post("ada", &["rust", "tech"], 11),
            true,
        ),
        (
            r#""rust" in social_post.hashtags"#,
            post("ada", &["go"], 11),
            false,
        ),
        (
            "social_post.hashtags.exists(h, h.startsWith('ru'))",
            post("ada", &["rustlang"], 0),
            true,
        ),
        (
            "size(social_post.hashtags) == 0 && social_post.author == key",
            post("ada", &[], 0),
            true,
        ),
        (
            "log_entry.status_code >= 500 && log_entry.latency_ms > 800.0",
            log("api", LogLevel::Warn, 503),
            true,
        ),
        (
            "log_entry.message.contains('timeout')",
            log("api", LogLevel::Warn, 503),
            true,
        ),
        (
            "log_entry.timestamp.getFullYear() == 2026",
            log("api", LogLevel::Warn, 503),
            true,
        ),
        (
            r#"log_entry.timestamp > timestamp("2025-06-01T00:00:00Z")"#,
            log("api", LogLevel::Warn, 503),
            true,
        ),
        (
            r#"topic == "stock_trades" && key == "A" && partition == 1 && offset > 6"#,
            trade("A", 1.0),
            true,
        ),
        ("offset % 2 == 0", log("api", LogLevel::Warn, 503), true),
    ];
    for (source, event, expected) in cases {
        assert_eq!(compile(source).matches(&event), expected, "{source}");
    }
}

#[test]
fn enums_are_numbers_with_named_constants() {
    let errors_and_worse = compile("log_entry.level >= LOG_LEVEL_WARN");
    assert!(errors_and_worse.matches(&log("api", LogLevel::Error, 0)));
    assert!(errors_and_worse.matches(&log("api", LogLevel::Warn, 0)));
    assert!(!errors_and_worse.matches(&log("api", LogLevel::Info, 0)));
    assert!(compile("stock_trade.side == TRADE_SIDE_SELL").matches(&trade("A", 1.0)));
    assert!(compile("log_entry.level == 4").matches(&log("api", LogLevel::Error, 0)));

    // The name in quotes would never be equal: refused, saying what to write instead.
    let error = refuse(r#"log_entry.level == "LOG_LEVEL_ERROR""#);
    assert_eq!(error.reason(), "filter_invalid");
    assert!(
        error
            .to_string()
            .contains("write LOG_LEVEL_ERROR without quotes"),
        "{error}"
    );
    let error = refuse(r#"log_entry.level == "loud""#);
    assert!(error.to_string().contains("LOG_LEVEL_*"), "{error}");
}

#[test]
fn absent_payloads_and_unset_fields_do_not_match() {
    let unset = compile(r#"stock_trade.timestamp > timestamp("2020-01-01T00:00:00Z")"#);
    assert_eq!(unset.evaluate(&trade("A", 1.0)), Evaluation::NoMatch);
    assert!(!compile("has(stock_trade.timestamp)").matches(&trade("A", 1.0)));
    assert!(compile("has(log_entry.timestamp)").matches(&log("api", LogLevel::Info, 0)));
    // A payload of another topic is absent: no match, and not an error.
    let trades = compile("stock_trade.price < 10.0");
    assert_eq!(
        trades.evaluate(&log("api", LogLevel::Info, 0)),
        Evaluation::NoMatch
    );
    assert!(!compile("has(stock_trade.price)").matches(&log("api", LogLevel::Info, 0)));
    // `||` and `?:` see past it, as CEL's logic says.
    let either = compile(r#"topic == "server_logs" || stock_trade.price > 100.0"#);
    assert!(either.matches(&log("api", LogLevel::Info, 0)));
    assert!(either.matches(&trade("A", 101.0)));
    assert!(!either.matches(&trade("A", 99.0)));
    assert!(!either.matches(&post("ada", &[], 0)));
    assert!(Topic::ALL.iter().all(|&t| either.may_match(t)));
    let per_topic = compile("log_entry.level >= LOG_LEVEL_ERROR || stock_trade.price > 500.0");
    assert!(per_topic.may_match(Topic::ServerLogs) && per_topic.may_match(Topic::StockTrades));
    assert!(!per_topic.may_match(Topic::SocialFeed));
}

#[test]
fn keys_named_plainly_are_routed_by() {
    let keys = |source: &str, topic: Topic| {
        compile(source)
            .keys(topic)
            .map(|keys| keys.iter().map(|k| k.to_string()).collect::<Vec<_>>())
    };
    let trades = Topic::StockTrades;
    assert_eq!(
        keys(
            r#"stock_trade.price > 500.0 && stock_trade.symbol in ["NVDA", "META", "NVDA"]"#,
            trades
        ),
        Some(vec!["META".to_owned(), "NVDA".to_owned()])
    );
    assert_eq!(
        keys(
            r#""AAPL" == stock_trade.symbol || stock_trade.symbol == "MSFT""#,
            trades
        ),
        Some(vec!["AAPL".to_owned(), "MSFT".to_owned()])
    );
    assert_eq!(
        keys(
            r#"stock_trade.symbol in ["A", "B"] && stock_trade.symbol == "B""#,
            trades
        ),
        Some(vec!["B".to_owned()])
    );
    assert_eq!(
        keys(r#"log_entry.service == "payments""#, Topic::ServerLogs),
        Some(vec!["payments".to_owned()])
    );
    // Not plainly: any key may match.
    for source in [
        r#"stock_trade.symbol == "A" || stock_trade.price > 1.0"#,
        r#"!(stock_trade.symbol == "A")"#,
        r#"stock_trade.symbol != "A""#,
        r#"stock_trade.symbol.startsWith("A")"#,
        r#"key == "A""#,
    ] {
        assert_eq!(keys(source, trades), None, "{source}");
    }
    // The keys of one topic say nothing of another's.
    assert_eq!(
        keys(r#"stock_trade.symbol == "A""#, Topic::ServerLogs),
        None
    );
    // And what the keys allow, the expression decides the same way.
    let routed = compile(r#"stock_trade.symbol in ["NVDA"] && stock_trade.price > 1.0"#);
    assert!(routed.matches(&trade("NVDA", 2.0)));
    assert!(!routed.matches(&trade("META", 2.0)));
}

/// The dashboard's search boxes send these (`frontend/src/requests.test.ts` spells the same).
#[test]
fn the_dashboards_search_filters_are_accepted_and_keep_what_the_page_keeps() {
    let logs = compile(concat!(
        r##"(log_entry.message.matches("(?i)err") || log_entry.endpoint.matches("(?i)err") || "##,
        r##"log_entry.service.matches("(?i)err") || log_entry.host.matches("(?i)err") || log_entry.level in [4]) && "##,
        r##"(log_entry.message.matches("(?i)50") || log_entry.endpoint.matches("(?i)50") || "##,
        r##"log_entry.service.matches("(?i)50") || log_entry.host.matches("(?i)50") || "##,
        r##"(log_entry.status_code != 0 && string(log_entry.status_code).contains("50")))"##,
    ));
    assert!(
        logs.matches(&log("api", LogLevel::Error, 503)),
        "level name, status"
    );
    assert!(!logs.matches(&log("api", LogLevel::Error, 200)));
    assert!(!logs.matches(&log("api", LogLevel::Warn, 503)));
    assert!(
        logs.matches(&log("err50", LogLevel::Warn, 0)),
        "in the service"
    );
    let posts = compile(concat!(
        r##"(("@" + social_post.author).matches("(?i)#rust") || social_post.text.matches("(?i)#rust") || "##,
        r##"social_post.hashtags.exists(t, ("#" + t).matches("(?i)#rust")))"##,
    ));
    assert!(posts.matches(&post("ada", &["Rustlang"], 0)));
    assert!(!posts.matches(&post("ada", &["go"], 0)));
    assert!(!posts.may_match(Topic::ServerLogs));
    let authors = compile(r##"("@" + social_post.author).matches("(?i)@ad")"##);
    assert!(authors.matches(&post("Ada", &[], 0)));
    assert!(!authors.matches(&post("bob", &[], 0)));
}

#[test]
fn mistakes_are_refused_saying_where() {
    let error = refuse("stock_trade.prise > 500.0");
    assert_eq!(error.reason(), "filter_invalid");
    assert_eq!(location(&error), (1, 12));
    let text = error.to_string();
    assert!(
        text.contains("has no field prise (did you mean price?)"),
        "{text}"
    );
    assert!(text.contains("line 1, column 12"), "{text}");

    let error = refuse("stok_trade.price > 1.0");
    assert!(
        error.to_string().contains("did you mean stock_trade?"),
        "{error}"
    );
    assert_eq!(location(&error), (1, 1));

    let error = refuse("stock_trade.price >");
    assert_eq!(error.reason(), "filter_syntax");
    assert_eq!(location(&error), (1, 20));

    let error = refuse("topic == \"server_logs\" &&\n  log_entry.levl > 1");
    assert_eq!(location(&error), (2, 12), "{error}");
    assert!(
        error.to_string().contains("(did you mean level?)"),
        "{error}"
    );

    // Columns count characters, not bytes.
    let error = refuse(r#"key == "é→" && stock_trade.prise > 1.0"#);
    assert_eq!(location(&error), (1, 27), "{error}");

    let error = refuse(r#"stock_trade.symbol == 1"#);
    assert!(error.to_string().contains("never equal"), "{error}");
    let error = refuse(r#"log_entry.service.lowerAscii() == "x""#);
    assert!(
        error.to_string().contains("no function lowerAscii"),
        "{error}"
    );
    let error = refuse(r#"now() > 1"#);
    assert!(
        error.to_string().contains("unknown function now"),
        "{error}"
    );
    let error = refuse(r#"log_entry.message.matches(log_entry.service)"#);
    assert!(error.to_string().contains("literal pattern"), "{error}");
    let error = refuse(r#"log_entry.message.matches("(unclosed")"#);
    assert_eq!(error.reason(), "filter_invalid");
    assert_eq!(location(&error), (1, 27), "{error}");
}

#[test]
fn results_that_are_not_bools_are_refused_or_counted() {
    for source in [
        "stock_trade.price",
        "stock_trade.price + 1.0",
        r#""yes""#,
        "[true]",
    ] {
        let error = refuse(source);
        assert!(
            error.to_string().contains("must be true or false"),
            "{source}: {error}"
        );
    }
    // Only known when the event is seen: no match, counted.
    let metrics = ExprMetrics::default();
    let expressions = Expressions::new(Limits::default(), 8, metrics.clone());
    let dynamic = expressions
        .get_blocking("[1, true][0]")
        .expect("valid")
        .expect("not empty");
    assert_eq!(dynamic.evaluate(&trade("A", 1.0)), Evaluation::NotBool);
    assert!(!dynamic.matches(&trade("A", 1.0)));
    let failing = expressions
        .get_blocking("100 / (offset - offset) > 1")
        .expect("valid")
        .expect("not empty");
    assert!(!failing.matches(&trade("A", 1.0)));
    let count = |kind| metrics.failure(kind).get();
    assert_eq!((count("not_bool"), count("error")), (1, 1));
}

#[test]
fn matches_uses_the_pattern_compiled_at_check_time() {
    let timeouts = compile(r#"log_entry.message.matches("time(out|d out)")"#);
    assert!(timeouts.matches(&log("api", LogLevel::Warn, 0)));
    let refused = compile(r#"log_entry.message.matches("^refused")"#);
    assert!(!refused.matches(&log("api", LogLevel::Warn, 0)));
}

#[test]
fn the_cost_is_bounded() {
    let long = format!("key == \"{}\"", "x".repeat(MAX_EXPRESSION_BYTES));
    assert_eq!(refuse(&long).reason(), "filter_too_long");

    let nested = format!("{}true{}", "(".repeat(13), ")".repeat(13));
    let error = refuse(&nested);
    assert_eq!(error.reason(), "filter_too_complex");
    assert_eq!(location(&error), (1, 13));
    // Brackets inside strings do not count.
    compile(&format!("key == \"{}\"", "(".repeat(40)));

    let wide = vec!["1"; 450].join("+") + " > 0";
    assert_eq!(refuse(&wide).reason(), "filter_too_complex");

    let error = refuse("social_post.hashtags.all(a, social_post.hashtags.exists(b, a == b))");
    assert_eq!(error.reason(), "filter_too_complex");
    assert!(error.to_string().contains("cannot nest"), "{error}");
    let five = ["social_post.hashtags.exists(h, h == 'x')"; 5].join(" || ");
    assert_eq!(refuse(&five).reason(), "filter_too_complex");
    // A loop over a loop's result is fine: one after the other, not one inside the other.
    compile("social_post.hashtags.map(h, h + '!').exists(h, h == 'rust!')");
}

#[test]
fn the_deepest_expression_allowed_evaluates_on_a_small_stack() {
    // Nested as deep as the limits let it, and run on a thread with a 1 MiB stack (an async
    // worker has 2 MiB).
    let mut source = "offset".to_owned();
    for _ in 0..11 {
        source = format!("({source} + 1)");
    }
    let source = format!("{source} > 0 && {}", vec!["offset > 0"; 14].join(" && "));
    let expression = compile(&source);
    let event = trade("A", 1.0);
    let result = std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(move || expression.evaluate(&event))
        .expect("thread")
        .join()
        .expect("no overflow");
    assert_eq!(result, Evaluation::Match);
}

#[test]
fn one_compilation_per_distinct_expression() {
    let metrics = ExprMetrics::default();
    let expressions = Expressions::new(Limits::default(), 2, metrics.clone());
    let a = expressions
        .get_blocking("offset > 1")
        .expect("ok")
        .expect("some");
    let again = expressions
        .get_blocking("offset > 1")
        .expect("ok")
        .expect("some");
    assert!(Arc::ptr_eq(&a, &again));
    assert_eq!((metrics.compiled.get(), metrics.cache_hits.get()), (1, 1));
    assert_eq!(expressions.get_blocking("  ").expect("ok"), None);
    // Bounded: a third expression drops the least recently used.
    expressions.get_blocking("offset > 2").expect("ok");
    expressions.get_blocking("offset > 1").expect("ok");
    expressions.get_blocking("offset > 3").expect("ok");
    assert_eq!(metrics.cached.get(), 2);
    expressions.get_blocking("offset > 1").expect("ok");
    assert_eq!(
        metrics.compiled.get(),
        3,
        "offset > 1 stayed, offset > 2 went"
    );
    // Refusals are not kept.
    let _ = expressions.get_blocking("offset >");
    assert_eq!(metrics.cached.get(), 2);
}

#[tokio::test]
async fn compiling_does_not_block_the_runtime() {
    let expressions = Expressions::default();
    let expression = expressions
        .get(r#"stock_trade.symbol == "NVDA""#)
        .await
        .expect("valid")
        .expect("not empty");
    assert!(expression.matches(&trade("NVDA", 1.0)));
    let error = expressions.get("stock_trade.").await.expect_err("syntax");
    assert_eq!(error.reason(), "filter_syntax");
}

#[test]
fn the_field_tables_cover_every_proto_field() {
    use prost_types::FileDescriptorSet;
    let set = FileDescriptorSet::decode(streamweaver_proto::FILE_DESCRIPTOR_SET).expect("set");
    let message = |name: &str| {
        set.file
            .iter()
            .flat_map(|f| &f.message_type)
            .find(|m| m.name() == name)
            .unwrap_or_else(|| panic!("{name}"))
            .field
            .iter()
            .map(|f| f.name().to_owned())
            .collect::<Vec<_>>()
    };
    let events = [
        trade("A", 1.0),
        post("ada", &["x"], 1),
        log("api", LogLevel::Info, 1),
    ];
    for (kind, (name, event)) in schema::Message::ALL.into_iter().zip([
        ("StockTrade", &events[0]),
        ("SocialPost", &events[1]),
        ("LogEntry", &events[2]),
    ]) {
        let table: Vec<_> = kind.fields().iter().map(|(f, _)| (*f).to_owned()).collect();
        assert_eq!(table, message(name), "{name}");
        // And every field reads: `has()` is true for each set field, the rest type-check.
        for (field, _) in kind.fields() {
            let source = format!("has({}.{field}) || true", kind.variable());
            assert!(compile(&source).matches(event), "{source}");
        }
    }
}

#[test]
fn nesting_is_measured_outside_string_literals() {
    assert_eq!(too_deep("((a))", 2), None);
    assert_eq!(too_deep("(((a)))", 2), Some(2));
    assert_eq!(too_deep(r#"x == "(((" && y == '[[['"#, 1), None);
    assert_eq!(too_deep(r#"x == """ ((( """ && (a)"#, 1), None);
    assert_eq!(too_deep(r#"x == "\"(((" && (a)"#, 1), None);
    assert_eq!(too_deep("a ? (b ? c : d) : e", 2), Some(7));
}
