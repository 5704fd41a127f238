// Run one handler of the CDK provider framework's REAL code (asset framework.js from a
// synth's cdk.out) once, as Lambda's Node.js runtime would call it, for the tests in
// tests/deploy/test_deploy_step.py (tests/support/framework_harness.py starts it).
//
//   node run.js <path/to/framework.js> <onEvent|isComplete|onTimeout>   (event on stdin)
//
// It prints one line, `RESULT <json>` (the handler's return value) or `ERROR <json>` (what
// Lambda's runtime answers for a thrown error: errorType, errorMessage, trace), and exits 0.
// The AWS SDK for JS v3 modules framework.js requires come from NODE_PATH; their endpoints
// from AWS_ENDPOINT_URL_LAMBDA / AWS_ENDPOINT_URL_SFN.
//
// The one thing here that is not AWS's behaviour: cfn-response.js PUTs the response with
// https.request({hostname, path}) and no port (CloudFormation's pre-signed S3 URL is on
// 443), so https's default port is pointed at the test's HTTPS server (CFN_RESPONSE_PORT).
"use strict";
const https = require("https");

if (process.env.CFN_RESPONSE_PORT) {
  https.globalAgent.defaultPort = Number(process.env.CFN_RESPONSE_PORT);
}

async function main() {
  const [framework, name] = process.argv.slice(2);
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const event = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  const handler = require(framework)[name];
  try {
    const result = await handler(event, {});
    process.stdout.write(`RESULT ${JSON.stringify(result === undefined ? null : result)}\n`);
  } catch (error) {
    process.stdout.write(`ERROR ${JSON.stringify({
      errorType: error.name, errorMessage: error.message,
      trace: String(error.stack || "").split("\n")})}\n`);
  }
}

main().catch((error) => {
  process.stdout.write(`CRASH ${String(error && error.stack)}\n`);
  process.exit(2);
});
