/** Stylesheets are bundled by Vite; importing one only adds it to the build. */
declare module '*.css';
