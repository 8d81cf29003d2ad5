using Kosmos2.VisionWorker;
using Kosmos2.ServiceDefaults;

var builder = WebApplication.CreateBuilder(args);
builder.AddServiceDefaults("kosmos2-vision-worker");
// Before the model loads: a worker that must not start refuses at once.
builder.AddInternalCallAuth("vision worker");
builder.AddVisionWorker();

var app = builder.Build();
app.MapServiceDefaults();
app.MapGrpcService<VisionWorkerService>();
app.Run();
