//! The service starts, answers health checks and metrics, and stops gracefully.

#[tokio::test]
async fn starts_answers_health_checks_and_stops_gracefully() {
    let env = testkit::TestEnv::new().await;
    let config = draft::Config::for_tests(env.common("draft"), "http://127.0.0.1:1", "http://127.0.0.1:1");
    let app = draft::startup::build(config, Default::default()).await.expect("service starts");
    testkit::check_lifecycle(app).await;
}

#[tokio::test]
async fn the_binary_stops_cleanly_on_sigterm() {
    testkit::check_sigterm(env!("CARGO_BIN_EXE_draft"), "draft").await;
}
