import { version } from "@bsx/core"; console.log(version);
