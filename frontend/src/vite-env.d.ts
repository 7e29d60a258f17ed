/// <reference types="vite/client" />

interface ImportMetaEnv {
  /** Gateway base URL baked in at build time, e.g. `http://gateway.example:8080`. */
  readonly VITE_GATEWAY_URL?: string;
}
